"""The viewport's images are asked about first: a long page, scrolled to its middle, is switched on
in the popup; the extension's first request holds exactly the images on screen (priority 1), the
images only near the viewport follow in requests of their own (priority 4). The backend's side
(most urgent first) is tested in tests/backend/test_batcher.py, and measured by the load tool's
``page`` scenario."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from extension_browser import launch_extension
from extension_site import RunningSite, SiteHandler
from PIL import Image

pytestmark = pytest.mark.browser

PAGE = "/rows.html"
IMAGES = 40  # 10 rows of 4 at the tests' 1000 x 700 viewport
VISIBLE, NEARBY = 1, 4  # PRIORITY in extension/shared/messages.js
LOOKAHEAD = 0.5  # content/images.js: half a viewport above and below

# Each image by its position: on screen, only within the lookahead, or neither.
PLACES_JS = """(lookahead) => [...document.querySelectorAll("img")].map((img) => {
  const box = img.getBoundingClientRect(), margin = innerHeight * lookahead;
  const on = (top, bottom) => box.bottom > top && box.top < bottom;
  return [img.currentSrc, on(0, innerHeight) ? "visible" : on(-margin, innerHeight + margin) ? "nearby" : "far"];
})"""


class RowsSite:
    """A page of ``IMAGES`` distinct 220 x 220 JPEGs in rows, and nothing else."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.images = []
        for _ in range(IMAGES):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (220, 220, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=80)
            self.images.append(buffer.getvalue())
        self.port = 0

    def url(self, path: str = PAGE) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def page(self) -> bytes:
        figures = "".join(f'<img data-test="n{i}" src="/img/{i}.jpg" width="220" height="220" alt="picture {i}">' for i in range(IMAGES))
        style = "body { margin: 0; } main { display: flex; flex-wrap: wrap; gap: 20px; width: 960px; } img { display: block; }"
        return f"<!doctype html><html><head><style>{style}</style></head><body><main>{figures}</main></body></html>".encode()


def _handler(site: RowsSite):
    class Handler(SiteHandler):
        def do_GET(self) -> None:
            if self.path == PAGE:
                self.reply(200, site.page(), "text/html; charset=utf-8")
            elif self.path.startswith("/img/"):
                self.reply(200, site.images[int(self.path.removeprefix("/img/").removesuffix(".jpg"))], "image/jpeg")
            else:
                self.reply(404, b"not found", "text/plain")

    return Handler


@pytest.fixture
def rows_site():
    site = RowsSite()
    with RunningSite(site, _handler(site)):
        yield site


def test_viewport_images_are_sent_first_and_apart(tmp_path, rows_site, tiny_bundle, backend_server):
    backend = backend_server(tiny_bundle, None, allow_loopback=True, allowed_ports=[rows_site.port])
    with launch_extension(tmp_path / "profile") as browser:
        browser.configure(backend.url, show_real=True)  # a badge on every image, whatever the tiny model says
        browser.service_worker.evaluate(  # off for this site: nothing is sent while the page loads and scrolls
            "() => chrome.storage.local.get('settings').then(({ settings }) => "
            "chrome.storage.local.set({ settings: { ...settings, disabledSites: ['127.0.0.1'] } }))"
        )
        page = browser.context.new_page()
        page.goto(rows_site.url())
        page.wait_for_function("[...document.images].every((img) => img.complete && img.naturalWidth > 0)")
        page.evaluate("window.scrollTo(0, 1200)")  # rows 5-7 on screen; rows 3-4 and 8-9 in the lookahead
        places = dict(page.evaluate(PLACES_JS, LOOKAHEAD))
        visible = [url for url, place in places.items() if place == "visible"]
        nearby = [url for url, place in places.items() if place == "nearby"]
        assert 0 < len(visible) <= 16 and nearby, places

        browser.open_popup(rows_site.url()).click("#site-enabled")  # on: the watcher starts on the scrolled page
        browser.wait_for_answers(page, len(visible) + len(nearby))
        requests = [json.loads(r.post_data)["items"] for r in browser.worker_requests() if r.url.endswith("/v1/detect")]

    sent = [item for items in requests for item in items]
    assert sorted(item["url"] for item in sent) == sorted(visible + nearby), "each image near the viewport, once"
    assert sorted(item["url"] for item in requests[0]) == sorted(visible), "the first request: the images on screen"
    assert {item["url"]: item["priority"] for item in sent} == {url: VISIBLE if url in visible else NEARBY for url in visible + nearby}
    assert all(len({item["priority"] for item in items}) == 1 for items in requests), "no request mixes priorities"
