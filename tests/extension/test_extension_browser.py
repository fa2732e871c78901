"""The extension in real Chromium against a real `genspot serve` (tiny bundle, real Redis).

The gallery page (extension_site.py) holds every kind of image the content script must handle.
The tests ask the backend directly about the same images and captions and check that the
page's badges, the popup's counts and the backend's and the site's request logs agree.
Screenshots go to test-artifacts/extension/ (the docs' screenshots, taken with the default
model, come from docs/screenshots/take.py).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections import Counter

import httpx
import pytest
from extension_browser import REPO_ROOT, launch_extension
from extension_site import BADGED, COOKIE, PRIVATE_PREFIX, RunningSite, TestSite, make_images
from PIL import Image
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.services import free_port

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts" / "extension"
README_MAX_BYTES = 300_000
EXTENSION_THRESHOLD = 0.0  # DEFAULT_SETTINGS.threshold in extension/shared/settings.js: follow the backend's own AI limit
ABOVE_FOLD = [name for name in BADGED if name != "lazy"]
BACKEND_USER_AGENT = "genspot"  # the backend fetcher's User-Agent starts so; Chromium's with "Mozilla"

# Where every element sits: badges must never move any of it.
LAYOUT_JS = """() => ({
  size: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
  boxes: [...document.body.querySelectorAll("*")].map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }),
})"""

# The focused element, seen through the badge's shadow root.
FOCUS_JS = """() => {
  const host = document.activeElement;
  const root = host && host.shadowRoot;
  return { tag: host ? host.tagName : null, label: root && root.activeElement ? root.activeElement.getAttribute("aria-label") : null,
           panel: root ? getComputedStyle(root.querySelector(".panel")).display : null, verdict: host ? host.dataset.verdict : null };
}"""


@pytest.fixture(scope="module")
def site():
    with RunningSite(TestSite(make_images())) as running:
        yield running


@pytest.fixture
def browser(tmp_path):
    with launch_extension(tmp_path / "profile") as launched:
        yield launched


def start_backend(backend_server, bundle, site, redis_url=None, **settings):
    """`genspot serve` allowed to fetch from the test site (loopback is refused by default)."""
    return backend_server(bundle, redis_url, allow_loopback=True, allowed_ports=[site.port], **settings)


def metric(backend, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include `labels`."""
    text = httpx.get(f"{backend.url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    )


def sent_item(site, name: str) -> dict:
    """What the extension sends for an image: its URL, or its bytes when it had to send them."""
    image = site.images[name]
    if image.path.startswith(("data:", PRIVATE_PREFIX)):
        return {"id": name, "image_b64": base64.b64encode(image.data).decode(), "alt_text": image.caption}
    return {"id": name, "url": site.url(image.path), "alt_text": image.caption}


def backend_results(backend, site, names) -> dict[str, dict]:
    """The backend's own answer for each image, asked directly."""
    response = httpx.post(f"{backend.url}/v1/detect", json={"items": [sent_item(site, name) for name in names]}, timeout=60)
    response.raise_for_status()
    return {result["id"]: result for result in response.json()["results"]}


def proven_ai(result: dict) -> bool:
    return (result.get("provenance") or {}).get("verdict") == "ai"


def shown_kind(result: dict) -> str:
    """The documented rule: the extension's threshold only turns weak "ai" verdicts into "?"."""
    if result["verdict"] == "ai" and result["ai_probability"] < EXTENSION_THRESHOLD and not proven_ai(result):
        return "uncertain"
    return result["verdict"]


def expected_text(kind: str, result: dict, display_names: dict[str, str]) -> str:
    """The badge's words: how sure (IPCC's "very likely" from 90%), "Labelled" when the file's metadata decided."""
    p, by_metadata = result["ai_probability"], result["decided_by"] == "provenance"
    if kind == "uncertain":
        return "Uncertain · evidence disagrees" if result["conflict"] else "Uncertain"
    if kind == "real":
        return "Labelled real" if by_metadata else "Very likely real" if p <= 0.1 else "Likely real"
    strength = "Labelled AI" if proven_ai(result) else "Very likely AI" if p >= 0.9 else "Likely AI"
    generator = result["generator"]
    return strength + (f" · {generator['name'] or display_names[generator['label']]}" if generator else "")


def display_names(browser, labels) -> dict[str, str]:
    """Generator names as the extension prints them (the mapping itself is tested in test_extension_units)."""
    page = browser.context.new_page()
    page.goto(browser.extension_url("options/options.html"))
    names = page.evaluate(
        "async (labels) => { await import('/content/verdicts.js'); return labels.map((l) => [l, genspot.verdicts.displayName(l)]); }",
        sorted(labels),
    )
    page.close()
    return dict(names)


def mixed_thresholds(results: dict[str, dict]) -> dict[str, float]:
    """Backend thresholds that split the page's images into ai / uncertain / real.

    A tiny test model's probabilities bunch together, so the default band would call them all
    uncertain. The threshold goes to the middle image with the widest gaps to its neighbours,
    and the band reaches halfway to them: every verdict appears, each by a clear margin.
    """
    ordered = sorted(result["ai_probability"] for name, result in results.items() if not proven_ai(result))
    candidates = [(min(ordered[i] - ordered[i - 1], ordered[i + 1] - ordered[i]), ordered[i]) for i in range(1, len(ordered) - 1)]
    gap, threshold = max(candidates)
    return {"threshold": threshold, "uncertain_band": gap / 2} if gap > 0 else {}


def wait_until(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def save_screenshots(page, name: str) -> bytes:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-full.png", full_page=True)
    return page.screenshot(path=ARTIFACTS / f"{name}.png")


def small_png(png: bytes, width: int = 860) -> bytes:
    """A README-sized copy: scaled down and palette-quantised (photos as PNG are otherwise huge)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    for colours in (256, 128, 64):
        buffer = io.BytesIO()
        image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(buffer, "PNG", optimize=True)
        if buffer.tell() < README_MAX_BYTES:
            break
    return buffer.getvalue()


def scroll_to_lazy_image(browser, page) -> list[dict]:
    page.locator("[data-test=lazy]").scroll_into_view_if_needed()
    browser.wait_for_badges(page, len(BADGED))
    page.evaluate("window.scrollTo(0, 0)")
    return browser.wait_for_answers(page, len(BADGED))


def test_gallery_badges_match_the_backend(browser, site, tiny_bundle, redis_server, backend_server):
    # A first server computes the page's probabilities into Redis; the one the extension uses
    # shares that cache and splits those exact probabilities into all three verdicts.
    probe = start_backend(backend_server, tiny_bundle, site, redis_server.url)
    thresholds = mixed_thresholds(backend_results(probe, site, BADGED))
    probe.stop()
    backend = start_backend(backend_server, tiny_bundle, site, redis_server.url, **thresholds)
    browser.configure(backend.url, show_real=True)
    page = browser.context.new_page()
    page.goto(site.url())
    browser.wait_for_answers(page, len(ABOVE_FOLD))
    lazy_url = site.image_url("lazy")
    assert lazy_url not in {item.get("url") for item in browser.sent_items()}, "checked before it came near the viewport"
    badges = {badge["image"]: badge for badge in scroll_to_lazy_image(browser, page)}
    assert sorted(badges) == sorted(BADGED), "one badge on each image but the icon (and none off an image)"
    expected = backend_results(backend, site, BADGED)
    names = display_names(browser, {result["generator"]["label"] for result in expected.values() if result["generator"]})
    for name in BADGED:
        result, badge = expected[name], badges[name]
        assert result["status"] == "ok", result
        assert badge["verdict"] == shown_kind(result), name
        assert badge["text"] == expected_text(shown_kind(result), result, names), name
        assert badge["visible"], f"page CSS hid the badge on {name}"
        assert badge["aria_label"].startswith("genspot: "), name
        assert result["model_version"] in badge["details"]
    assert badges["sd-metadata"]["text"].startswith("Labelled AI"), "Stable Diffusion's PNG text chunk proves AI"
    if thresholds:  # (a model whose probabilities are all equal cannot be split)
        assert {badge["verdict"] for badge in badges.values()} == {"ai", "real", "uncertain"}, "the page shows every verdict"

    # The cookie image: the backend got 403 without the cookie, the extension fetched it with it and sent the bytes.
    cookie_requests = site.requests_for(site.images["cookie"].path)
    assert [r.status for r in cookie_requests if r.user_agent.startswith(BACKEND_USER_AGENT)] == [403]
    extension_fetches = [r for r in cookie_requests if r.fetch_dest == "empty"]
    assert extension_fetches and all(r.status == 200 and COOKIE in r.cookie for r in extension_fetches)
    assert metric(backend, "genspot_fetch_errors_total", code="fetch_failed") >= 1
    assert metric(backend, "genspot_items_total", input="base64", status="ok") >= 2 * 2, "cookie + data: image, from the extension and from this test"
    assert "your browser sent the image to genspot's service, as the service could not download it itself" in badges["cookie"]["details"]

    # What the extension sent: each image the browser shows (srcset / <picture> choices, never the
    # icon or the fallbacks) with its caption, without the page's address (off by default), to the
    # backend only; its one other request fetched the image the backend could not.
    items = browser.sent_items()
    by_url = {site.image_url(name): site.images[name].caption for name in BADGED if not site.images[name].path.startswith("data:")}
    assert {item["url"]: item["alt_text"] for item in items if "url" in item} == by_url
    assert not [item for item in items if "page_url" in item]
    assert {r.url for r in browser.worker_requests()} == {f"{backend.url}/v1/detect", site.image_url("cookie")}
    # (the options page asked the saved backend for its limits; never the default one before the save)
    elsewhere = [r.url for r in browser.requests if not r.url.startswith((site.url("/"), f"{backend.url}/", "chrome-extension://", "data:"))]
    assert elsewhere == []
    by_bytes = {site.images[name].caption for name in ("data-uri", "cookie")}
    assert {item["alt_text"] for item in items if "image_b64" in item} == by_bytes

    # The popup counts what the page shows.
    counts = Counter(shown_kind(result) for result in expected.values())
    popup = browser.open_popup(site.url())
    assert browser.popup_counts(popup) == {kind: counts.get(kind, 0) for kind in ("ai", "real", "uncertain", "error")}
    toolbar = browser.service_worker.evaluate("(tabId) => chrome.action.getBadgeText({ tabId })", browser.tab_id(site.url()))
    assert toolbar == str(counts["ai"]), "the toolbar button counts the page's AI images"

    # Keyboard: Tab reaches a badge, which names itself; Enter opens its details, Escape closes them.
    page.bring_to_front()
    page.keyboard.press("Tab")
    focus = page.evaluate(FOCUS_JS)
    assert focus["tag"] == "GENSPOT-BADGE" and focus["label"].startswith("genspot: ") and focus["panel"] == "none"
    page.keyboard.press("Enter")
    assert page.evaluate(FOCUS_JS)["panel"] == "block"
    page.keyboard.press("Escape")
    assert page.evaluate(FOCUS_JS)["panel"] == "none" and page.evaluate(FOCUS_JS)["tag"] == "GENSPOT-BADGE"

    # Screenshots, with the metadata badge's details open (hover shows them too).
    page.evaluate("document.activeElement.blur()")
    page.locator("genspot-badge button", has_text="Labelled AI").hover()
    readme_png = small_png(save_screenshots(page, "gallery"))
    (ARTIFACTS / "badges-readme.png").write_bytes(readme_png)
    assert len(readme_png) < README_MAX_BYTES

    # Badges sit outside the layout: removing them moves nothing.
    layout = page.evaluate(LAYOUT_JS)
    page.evaluate("document.querySelectorAll('genspot-badge').forEach((badge) => badge.remove())")
    assert page.evaluate(LAYOUT_JS) == layout


def test_session_cache_site_switch_and_rescan(browser, site, tiny_bundle, backend_server):
    backend = start_backend(backend_server, tiny_bundle, site)
    browser.configure(backend.url, show_real=True)
    page = browser.context.new_page()
    page.goto(site.url())
    browser.wait_for_answers(page, len(ABOVE_FOLD))
    calls = metric(backend, "genspot_requests_total", route="/v1/detect")

    page.reload()  # every answer now comes from the session cache
    browser.wait_for_answers(page, len(ABOVE_FOLD))
    assert metric(backend, "genspot_requests_total", route="/v1/detect") == calls

    popup = browser.open_popup(site.url())
    popup.click("#site-enabled")  # off for 127.0.0.1
    page.wait_for_function("document.querySelectorAll('genspot-badge').length === 0")
    assert browser.settings()["disabledSites"] == ["127.0.0.1"]
    expect(popup.locator("#site-enabled")).not_to_be_checked()
    expect(popup.locator("#count-real")).to_have_text("0")
    popup.click("#site-enabled")  # on again
    browser.wait_for_answers(page, len(ABOVE_FOLD))
    assert browser.settings()["disabledSites"] == []

    popup.click("#rescan")  # skips the session cache: the backend is asked again
    wait_until(lambda: metric(backend, "genspot_requests_total", route="/v1/detect") > calls, "rescan asked the backend again")
    browser.wait_for_answers(page, len(ABOVE_FOLD))


def options_limits(browser) -> str:
    """The options page's line about the saved backend's limits, once it has read them (or given up)."""
    page = browser.context.new_page()
    page.goto(browser.extension_url("options/options.html"))
    limits = page.locator("#threshold-limits")
    expect(limits).to_have_text(re.compile(r"^(?!Reading)\S"))  # filled in, and not still reading
    text = limits.text_content()
    page.close()
    return text


def test_options_page_switches_the_backend(browser, site, tiny_bundle, backend_server):
    first = start_backend(backend_server, tiny_bundle, site)
    second = start_backend(backend_server, tiny_bundle, site, api_keys=["second-key"], threshold=0.6, uncertain_band=0.1)

    # A fresh install's options page contacts nothing (not even the default backend) until a backend is saved.
    assert options_limits(browser) == 'Save your backend (or use "Check connection") to read its limits; assuming its defaults ("AI" from 65%).'
    assert [r.url for r in browser.requests if not r.url.startswith("chrome-extension://")] == []

    browser.configure(first.url, show_real=True)
    page = browser.context.new_page()
    page.goto(site.url())
    browser.wait_for_answers(page, len(ABOVE_FOLD))
    first_items = metric(first, "genspot_items_total")
    assert first_items >= len(ABOVE_FOLD) and metric(second, "genspot_items_total") == 0

    browser.configure(second.url, api_key="second-key", show_real=True, send_page_url=True)
    assert browser.settings()["backendUrl"] == second.url
    assert options_limits(browser) == 'This backend: "AI" from 70%, "real" below 50%.', "the saved backend's own limits, read with its key"
    to_model = [r for r in browser.requests if r.url.endswith("/v1/model")]
    assert to_model and {r.url for r in to_model} <= {f"{first.url}/v1/model", f"{second.url}/v1/model"}
    page.reload()
    browser.wait_for_answers(page, len(ABOVE_FOLD))
    assert metric(second, "genspot_items_total") >= len(ABOVE_FOLD)
    assert metric(first, "genspot_items_total") == first_items, "nothing went to the old backend"
    to_second = [r for r in browser.worker_requests() if r.url == f"{second.url}/v1/detect"]
    assert to_second and all(r.headers.get("x-api-key") == "second-key" for r in to_second)
    assert {item.get("page_url") for r in to_second for item in json.loads(r.post_data)["items"]} == {site.url()}


def test_unreachable_backend_shows_not_checked_badges(browser, site):
    # "Likely real" badges stay off (the default): an image that could not be checked must
    # still show that, and never look like the silent "real" of an image without a badge.
    down = f"http://127.0.0.1:{free_port()}"
    browser.configure(down)
    page = browser.context.new_page()
    page.goto(site.url())
    popup = browser.open_popup(site.url())
    expect(popup.locator("#count-error")).to_have_text(str(len(ABOVE_FOLD)), timeout=30_000)
    message = f'genspot\'s service is not running at {down}. Start it with "make serve" in the genspot folder; images are checked as soon as it answers.'
    assert popup.text_content("#last-error") == message
    assert browser.popup_counts(popup) == {"ai": 0, "real": 0, "uncertain": 0, "error": len(ABOVE_FOLD)}
    expect(popup.locator("#images li.error .chip")).to_have_text(["Not checked"] * len(ABOVE_FOLD))

    badges = {badge["image"]: badge for badge in browser.wait_for_answers(page, len(ABOVE_FOLD))}
    assert sorted(badges) == sorted(ABOVE_FOLD), "one quiet badge on each image it could not check (none on the icon)"
    for name, badge in badges.items():
        assert (badge["verdict"], badge["text"]) == ("error", "Not checked"), name
        assert badge["visible"], f"page CSS hid the badge on {name}"
        assert badge["aria_label"] == f"genspot: not checked ({message}). Press Enter for details.", name
        assert badge["details"].startswith("VerdictNot checked yet") and f"Why{message}" in badge["details"], name
        assert "real" not in badge["text"].lower() and "Likely real" not in badge["details"], name
    assert {r.url for r in browser.worker_requests()} == {f"{down}/v1/detect"}
