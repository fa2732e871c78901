"""What a non-expert sees with the default settings, in real Chromium against a real `genspot serve`:
every image on a page of mixed real and AI pictures carries a visible state ("Checking…", a
verdict in words, "Uncertain", or "Not checked" saying why), badge texts stay whole on large
images with numbers and the model id only in the panel, and a backend started after the page
loaded is picked up without a reload.

The page (StatesSite) holds dev pictures, one picture the site sends the backend only after a
pause (so "Checking…" can be seen), one it answers the backend with HTML (a failed check), an
SVG drawing (skipped), and a Stable Diffusion PNG shown 820 px wide (a long badge text).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from extension_browser import launch_extension
from extension_site import Request, RunningSite, SiteHandler, make_images
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from test_extension_browser import BACKEND_USER_AGENT, mixed_thresholds

from tests.fixtures.services import free_port

pytestmark = pytest.mark.browser

PAGE_PATH = "/states.html"
PICTURES = ["alt", "alt-real", "title", "figcaption", "srcset", "lazy"]  # dev JPEGs from the gallery, AI and real
SLOW, BROKEN, DRAWING, WIDE = "slow", "broken", "drawing", "wide"
BACKEND_PAUSE_S = 2.5  # how long the site makes the backend wait for the slow picture
VERDICTS = {"ai", "real", "uncertain"}
STATES = VERDICTS | {"checking", "error"}
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="220" height="220"><rect width="220" height="220" fill="#4a7"/></svg>'

# Every image of the page (data-test) with the badge on its corner, and whether that badge shows.
STATES_JS = """() => {
  const hosts = [...document.querySelectorAll("genspot-badge")];
  return Object.fromEntries([...document.querySelectorAll("img[data-test]")].map((img) => {
    const box = img.getBoundingClientRect();
    const host = hosts.find((h) => Math.abs(box.left + scrollX + 4 - parseFloat(h.style.left)) <= 1 && Math.abs(box.top + scrollY + 4 - parseFloat(h.style.top)) <= 1);
    if (!host) return [img.dataset.test, null];
    const button = host.shadowRoot.querySelector("button.badge"), shown = button.getBoundingClientRect();
    return [img.dataset.test, {
      kind: host.dataset.verdict, text: button.textContent, whole: button.scrollWidth <= button.clientWidth,
      visible: getComputedStyle(host).display !== "none" && shown.width > 0 && shown.height > 0,
      text_px: button.scrollWidth, panel: host.shadowRoot.querySelector(".panel").innerText,
      details: host.shadowRoot.querySelector(".panel").textContent,
    }];
  }));
}"""


@dataclass
class StatesSite:
    files: dict[str, tuple[bytes, str]]  # path -> (bytes, content type)
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = PAGE_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def path_of(name: str) -> str:
    return {DRAWING: "/img/drawing.svg", WIDE: "/img/wide.png"}.get(name, f"/img/{name}.jpg")


def make_files() -> dict[str, tuple[bytes, str]]:
    gallery = make_images()
    files = {path_of(name): (gallery[name].data, "image/jpeg") for name in PICTURES}
    files[path_of(SLOW)] = (gallery["cookie"].data, "image/jpeg")
    files[path_of(BROKEN)] = (gallery["dynamic"].data, "image/jpeg")
    files[path_of(DRAWING)] = (SVG, "image/svg+xml")
    files[path_of(WIDE)] = (gallery["sd-metadata"].data, "image/png")
    return files


def page_html() -> str:
    small = "".join(f'<img data-test="{name}" src="{path_of(name)}" width="150" height="150" alt="picture {name}">' for name in [*PICTURES, SLOW, BROKEN, DRAWING])
    wide = f'<img data-test="{WIDE}" src="{path_of(WIDE)}" width="820" height="300" alt="a lighthouse">'
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>states</title>
<style>body {{ margin: 8px; }} main {{ display: flex; flex-wrap: wrap; gap: 8px; }} img {{ display: block; object-fit: cover; }}</style></head>
<body><main>{small}{wide}</main></body></html>"""


def _handler(site: StatesSite) -> type[SiteHandler]:
    page = page_html().encode()

    class Handler(SiteHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            by_backend = self.headers.get("User-Agent", "").startswith(BACKEND_USER_AGENT)
            if path == PAGE_PATH:
                status, body, kind = 200, page, "text/html; charset=utf-8"
            elif path == path_of(BROKEN) and by_backend:
                status, body, kind = 200, b"<!doctype html><p>not a picture</p>", "image/jpeg"
            elif path in site.files:
                if path == path_of(SLOW) and by_backend:
                    time.sleep(BACKEND_PAUSE_S)
                status, (body, kind) = 200, site.files[path]
            else:
                status, body, kind = 404, b"not found", "text/plain"
            self.answer(site, status, body, kind)

    return Handler


@pytest.fixture(scope="module")
def site():
    states = StatesSite(make_files())
    with RunningSite(states, _handler(states)) as running:
        yield running


@pytest.fixture
def browser(tmp_path):
    with launch_extension(tmp_path / "profile") as launched:
        yield launched


def save_backend_only(browser, backend_url: str) -> None:
    """The one setting a new user changes: the backend's address; everything else stays at its default."""
    page = browser.context.new_page()
    page.goto(browser.extension_url("options/options.html"))
    expect(page.locator("#fields")).to_be_enabled()
    page.fill("#backend-url", backend_url)
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_text("Saved.")
    page.close()


def states(page) -> dict[str, dict | None]:
    return page.evaluate(STATES_JS)


def wait_for_states(page, condition: str, what: str, timeout_ms: float = 60_000) -> dict[str, dict | None]:
    """The states, once `condition` (JS over `states`, the STATES_JS map) holds; else a failure saying what was shown."""
    try:
        page.wait_for_function(f"() => {{ const states = ({STATES_JS})(); return {condition}; }}", timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = {name: state and (state["kind"], state["text"]) for name, state in states(page).items()}
        pytest.fail(f"timed out after {timeout_ms / 1000:g} s waiting until {what}; shown: {shown}")
    return states(page)


def start_backend(backend_server, bundle, site, **settings):
    return backend_server(bundle, allow_loopback=True, allowed_ports=[site.port], **settings)


def split_thresholds(backend, site) -> dict[str, float]:
    """Backend thresholds that split the dev pictures into ai / uncertain / real (the tiny model's
    probabilities bunch together)."""
    items = [{"id": name, "url": site.url(path_of(name))} for name in PICTURES]
    response = httpx.post(f"{backend.url}/v1/detect", json={"items": items}, timeout=60)
    response.raise_for_status()
    return mixed_thresholds({result["id"]: result for result in response.json()["results"]})


def test_every_image_on_a_mixed_page_carries_a_visible_state_with_default_settings(browser, site, tiny_bundle, backend_server):
    probe = start_backend(backend_server, tiny_bundle, site)
    thresholds = split_thresholds(probe, site)
    probe.stop()
    backend = start_backend(backend_server, tiny_bundle, site, **thresholds)
    save_backend_only(browser, backend.url)
    page = browser.context.new_page()
    page.goto(site.url())

    # While the backend waits for the slow picture, that picture says so, and every image already shows a state.
    while_checking = wait_for_states(page, f"states.{SLOW}?.kind === 'checking' && Object.values(states).every((s) => s)", "the slow picture shows 'Checking…'")
    assert while_checking[SLOW]["text"] == "Checking…" and while_checking[SLOW]["visible"]
    assert all(state["kind"] in STATES and state["visible"] for state in while_checking.values()), while_checking

    final = wait_for_states(page, "Object.values(states).every((s) => s && s.kind !== 'checking')", "every image has its final state")
    assert all(state["visible"] for state in final.values()), {name: state for name, state in final.items() if not state["visible"]}
    kinds = {name: state["kind"] for name, state in final.items()}
    assert all(kind in STATES - {"checking"} for kind in kinds.values()), kinds
    assert kinds[SLOW] in VERDICTS and kinds[WIDE] == "ai"
    if thresholds:  # (a model whose probabilities are all equal cannot be split)
        assert {kinds[name] for name in PICTURES} == VERDICTS, f"real, AI and uncertain pictures all carry a badge: {kinds}"
    assert (kinds[DRAWING], final[DRAWING]["text"]) == ("error", "Not checked")
    assert "VerdictNot checked: skipped" in final[DRAWING]["panel"].replace("\n", "").replace("\t", "")
    assert (kinds[BROKEN], final[BROKEN]["text"]) == ("error", "Not checked") and "not a supported image" in final[BROKEN]["panel"]
    assert not [state["text"] for state in final.values() if "?" in state["text"] or "%" in state["text"]], "words on badges, numbers only in panels"


def test_badge_words_stay_whole_on_a_large_image_and_the_model_id_sits_behind_a_details_line(browser, site, tiny_bundle, backend_server):
    backend = start_backend(backend_server, tiny_bundle, site)
    save_backend_only(browser, backend.url)
    page = browser.context.new_page()
    page.goto(site.url())
    wide = wait_for_states(page, f"states.{WIDE}?.kind === 'ai'", "the wide picture has its verdict")[WIDE]
    model = httpx.get(f"{backend.url}/v1/model", timeout=5).json()["version"]
    assert wide["text_px"] > 240, "a text longer than the old 240 px cap"
    assert wide["whole"], f"badge text cut on an 820 px image: {wide['text']}"
    assert wide["text"].startswith("Labelled AI · ")

    badge = page.locator("genspot-badge").filter(has=page.locator("button.badge", has_text="Labelled AI"))
    badge.locator("button.badge").click()
    panel = states(page)[WIDE]["panel"]
    assert "Technical details" in panel and model not in panel, "the model id is hidden until asked for"
    assert "generation settings saved in the file" in panel
    badge.locator("summary").click()
    opened = states(page)[WIDE]["panel"]
    assert model in opened and "genspot's service downloaded the image from its address" in opened


def test_a_backend_started_after_the_page_loaded_is_picked_up_without_a_reload(browser, site, tiny_bundle, backend_server):
    port = free_port()
    save_backend_only(browser, f"http://127.0.0.1:{port}")
    page = browser.context.new_page()
    page.goto(site.url())
    page.evaluate("window.loadedOnce = true")
    down = wait_for_states(page, f"{json.dumps(PICTURES)}.every((name) => states[name]?.kind === 'error')", "the pictures say 'Not checked'")
    assert 'Start it with "make serve" in the genspot folder' in down[PICTURES[0]]["panel"]
    assert "genspot tries again by itself" in down[PICTURES[0]]["panel"]
    popup = browser.open_popup(site.url())
    expect(popup.locator("#last-error")).to_contain_text('Start it with "make serve"')

    started = time.monotonic()
    start_backend(backend_server, tiny_bundle, site, port=port)
    up = wait_for_states(page, f"{json.dumps(PICTURES)}.every((name) => ['ai', 'real', 'uncertain'].includes(states[name]?.kind))",
                         "the pictures get verdicts by themselves", timeout_ms=90_000)
    assert all(up[name]["visible"] for name in PICTURES)
    assert page.evaluate("window.loadedOnce") is True, "recovered in place, not by reloading the page"
    print(f"verdicts {time.monotonic() - started:.1f} s after the backend was started")
    expect(popup.locator("#last-error")).to_be_hidden()
