"""One extension folder for Chromium and Firefox: the same gallery page gets the same badges in both.

Firefox runs the manifest's `background.scripts` (an event page), Chromium its
`background.service_worker`; everything else is shared. Firefox is Debian's firefox-esr with
the extension installed as a temporary add-on (firefox_browser.py).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from extension_browser import EXTENSION_DIR, POPUP_COUNTS, launch_extension
from extension_site import BADGED, COOKIE, RunningSite, TestSite, make_images
from firefox_browser import FirefoxExtension, launch_firefox
from test_extension_browser import ABOVE_FOLD, backend_results, mixed_thresholds, start_backend

from tests.fixtures.services import free_port

pytestmark = pytest.mark.browser

MANIFEST = json.loads((EXTENSION_DIR / "manifest.json").read_text(encoding="utf-8"))
SCROLL_TO_LAZY_JS = """() => document.querySelector("[data-test=lazy]").scrollIntoView()"""
# Every answer is in: no badge still says it is checking its image.
SETTLED_JS = """() => ![...document.querySelectorAll("genspot-badge")].some((badge) => badge.dataset.verdict === "checking")"""
# What a badge says; where it sits is checked by the harnesses' BADGES_JS (badge["image"]).
SHOWN = ("verdict", "text", "aria_label", "visible")


@pytest.fixture(scope="module")
def site():
    with RunningSite(TestSite(make_images())) as running:
        yield running


def shown(badges: list[dict]) -> dict[str, tuple]:
    return {badge["image"]: tuple(badge[key] for key in SHOWN) for badge in badges if badge["image"]}


def chromium_badges(profile, site, backend) -> dict[str, tuple]:
    with launch_extension(profile) as chromium:
        chromium.configure(backend.url, show_real=True)
        page = chromium.context.new_page()
        page.goto(site.url())
        chromium.wait_for_badges(page, len(ABOVE_FOLD))
        page.evaluate(SCROLL_TO_LAZY_JS)
        chromium.wait_for_badges(page, len(BADGED))
        page.wait_for_function(SETTLED_JS)
        return shown(chromium.badges(page))


def test_firefox_shows_the_badges_chromium_shows(site, tiny_bundle, redis_server, backend_server, tmp_path):
    probe = start_backend(backend_server, tiny_bundle, site, redis_server.url)
    thresholds = mixed_thresholds(backend_results(probe, site, BADGED))
    probe.stop()
    backend = start_backend(backend_server, tiny_bundle, site, redis_server.url, **thresholds)
    in_chromium = chromium_badges(tmp_path / "chromium", site, backend)

    with launch_firefox(tmp_path / "firefox") as firefox:
        assert firefox.extension_id == MANIFEST["browser_specific_settings"]["gecko"]["id"]
        firefox.configure(backend.url, show_real=True)
        assert firefox.settings()["backendUrl"] == backend.url
        page = firefox.open(site.url())
        firefox.wait_for_badges(page, len(ABOVE_FOLD))
        page.evaluate(SCROLL_TO_LAZY_JS)
        firefox.wait_for_badges(page, len(BADGED))
        page.wait_for(SETTLED_JS)
        in_firefox = shown(firefox.badges(page))
        assert sorted(in_firefox) == sorted(BADGED), "one badge on each image but the icon"
        assert in_firefox == in_chromium
        if thresholds:  # (a model whose probabilities are all equal cannot be split)
            assert {badge[0] for badge in in_firefox.values()} == {"ai", "real", "uncertain"}, "the page shows every verdict"

        # The popup counts what the page shows; the toolbar button counts its AI images.
        counts = Counter(badge[0] for badge in in_firefox.values())
        popup = firefox.open_popup(site.url())
        assert FirefoxExtension.popup_counts(popup) == {kind: counts.get(kind, 0) for kind in POPUP_COUNTS}
        toolbar = popup.evaluate("() => chrome.action.getBadgeText({ tabId: Number(new URLSearchParams(location.search).get('tab')) })")
        assert toolbar == str(counts["ai"])
        page.screenshot(tmp_path / "firefox-gallery.png")

    # The image only the page's session cookie unlocks: Firefox's background script fetched it with the cookie.
    firefox_fetches = [r for r in site.requests_for(site.images["cookie"].path) if "Firefox/" in r.user_agent and r.fetch_dest == "empty"]
    assert firefox_fetches and all(r.status == 200 and COOKIE in r.cookie for r in firefox_fetches)


def test_firefox_unreachable_backend_shows_not_checked(site, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    with launch_firefox(tmp_path / "firefox") as firefox:
        firefox.configure(down)
        page = firefox.open(site.url())
        firefox.wait_for_badges(page, len(ABOVE_FOLD))
        page.wait_for(SETTLED_JS, timeout_ms=30_000)
        badges = shown(firefox.badges(page))
        assert sorted(badges) == sorted(ABOVE_FOLD)
        assert {badge[0] for badge in badges.values()} == {"error"}
        popup = firefox.open_popup(site.url())
        popup.wait_for("(count) => document.getElementById('count-error').textContent === String(count)", len(ABOVE_FOLD))
        assert down in popup.evaluate("() => document.getElementById('last-error').textContent"), "the popup names the backend it could not reach"


# The one message Chromium has for the shared manifest: it runs `background.service_worker`
# and ignores the `background.scripts` that Firefox runs.
CHROMIUM_MANIFEST_WARNINGS = ["'background.scripts' requires manifest version of 2 or lower."]
# Chromium collects manifest warnings only in developer mode, and for extensions loaded after it is on.
MANIFEST_WARNINGS_JS = """async (id) => {
  const call = (name, ...args) => new Promise((resolve) => chrome.developerPrivate[name](...args, resolve));
  await call("updateProfileConfiguration", { inDeveloperMode: true });
  await call("reload", id, { failQuietly: true });
  for (;;) {
    const info = await call("getExtensionInfo", id);
    if (info.state === "ENABLED") return info.manifestErrors.map((error) => error.message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}"""


def test_chromium_loads_the_shared_manifest(tmp_path):
    with launch_extension(tmp_path / "chromium") as chromium:
        page = chromium.context.new_page()
        page.goto("chrome://extensions")
        assert page.evaluate(MANIFEST_WARNINGS_JS, chromium.extension_id) == CHROMIUM_MANIFEST_WARNINGS
