"""The web site the browser tests visit: one gallery page and its images, served on 127.0.0.1.

The page holds every kind of image the content script must handle (alt text, title,
figcaption, srcset, <picture>, a data: URI, a Stable Diffusion PNG, a lazy image far below
the fold, one added by script after load, a 32x32 icon, and one that only loads with the
page's session cookie), plus page CSS that tries to hide and restyle the badges. Every
request is recorded with its cookie, user agent and fetch destination so tests can tell the
backend's fetches from the page's and the extension's.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from tests.fixtures.services import SD_PARAMETERS

DEV_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dev"
COOKIE = "genspot_session=let-me-in"
PRIVATE_PREFIX = "/private/"
PAGE_PATH = "/gallery.html"

# test name -> how the page shows it (one <img> each, see _figure())
KINDS = {
    "alt": "alt",
    "alt-real": "alt",
    "title": "title",
    "figcaption": "figcaption",
    "srcset": "srcset",
    "picture": "picture",
    "data-uri": "data-uri",
    "sd-metadata": "alt",
    "icon": "icon",
    "cookie": "cookie",
    "lazy": "lazy",
    "dynamic": "dynamic",
}
BADGED = [name for name in KINDS if name != "icon"]  # every image but the icon gets a badge


@dataclass
class Request:
    path: str
    cookie: str
    user_agent: str
    fetch_dest: str  # "image" for the page's <img>, "empty" for fetch()
    status: int


@dataclass
class SiteImage:
    """One test image: its bytes, the URL path the browser should end up loading, its caption."""

    name: str
    data: bytes
    content_type: str
    path: str
    caption: str


def _generated(seed: int, size: int = 256) -> Image.Image:
    """A smooth colour field with noise, for machines without the dev data set."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    hue = rng.uniform(0, 1, 3)
    base = np.stack([np.sin(6 * x * hue[0] + y), np.cos(5 * y * hue[1] - x), np.sin(4 * (x + y) * hue[2])], -1)
    pixels = (base * 0.5 + 0.5) * 220 + rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _dev_images(count: int) -> list[tuple[Image.Image, str]]:
    """The first `count` dev images alternating AI / real, with their captions (or [] without the data)."""
    labels = DEV_DATA / "labels.csv"
    if not labels.is_file():
        return []
    rows = list(csv.DictReader(labels.open(encoding="utf-8")))
    ai = [row for row in rows if row["label_a"] == "1" and row["caption"]]
    real = [row for row in rows if row["label_a"] == "0" and row["caption"]]
    chosen = [row for pair in zip(ai, real) for row in pair][:count]
    return [(Image.open(DEV_DATA / row["image"]).convert("RGB"), " ".join(row["caption"].split())) for row in chosen]


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _sd_png(image: Image.Image) -> bytes:
    """A PNG as Stable Diffusion web UIs save it: generation parameters in a text chunk (provenance says AI)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", SD_PARAMETERS)
    return _encode(image, "PNG", pnginfo=info)


def make_images() -> dict[str, SiteImage]:
    """name -> SiteImage for every image on the page (dev images where present, else generated)."""
    photos = _dev_images(len(KINDS))
    while len(photos) < len(KINDS):
        photos.append((_generated(len(photos)), f"generated test picture number {len(photos)}"))
    images = {}
    for (name, kind), (photo, caption) in zip(KINDS.items(), photos):
        if kind == "icon":
            data, content_type, path, caption = _encode(photo.resize((32, 32)), "PNG"), "image/png", f"/img/{name}.png", "menu"
        elif kind == "data-uri":
            data, content_type = _encode(photo.resize((128, 128)), "PNG"), "image/png"
            path = f"data:image/png;base64,{base64.b64encode(data).decode()}"
        elif kind == "picture":
            data, content_type, path = _encode(photo, "WEBP", quality=90), "image/webp", f"/img/{name}.webp"
        elif name == "sd-metadata":
            data, content_type, path = _sd_png(photo), "image/png", f"/img/{name}.png"
        else:
            folder = PRIVATE_PREFIX if kind == "cookie" else "/img/"
            data, content_type, path = _encode(photo, "JPEG", quality=90), "image/jpeg", f"{folder}{name}.jpg"
        images[name] = SiteImage(name, data, content_type, path, caption)
    return images


def _figure(image: SiteImage) -> str:
    """The HTML that shows one image; the caption sits where that kind of page puts it."""
    name, src, caption = image.name, html.escape(image.path), html.escape(image.caption)
    kind = KINDS[name]
    attrs = f'data-test="{name}" width="220" height="220"'
    if kind == "title":
        tag = f'<img {attrs} src="{src}" title="{caption}">'
    elif kind == "figcaption":
        return f'<figure><img {attrs} src="{src}"><figcaption>{caption}</figcaption></figure>'
    elif kind == "srcset":  # the browser must pick the srcset candidate, never the src fallback
        tag = f'<img {attrs} src="/img/srcset-fallback.jpg" srcset="{src} 1x, {src} 2x" alt="{caption}">'
    elif kind == "picture":
        tag = f'<picture><source type="image/webp" srcset="{src}"><img {attrs} src="/img/picture-fallback.jpg" alt="{caption}"></picture>'
    elif kind == "lazy":
        tag = f'<div class="spacer">scroll down</div><img {attrs} loading="lazy" src="{src}" alt="{caption}">'
    elif kind == "dynamic":
        return '<div id="dynamic-slot"></div>'
    else:
        tag = f'<img {attrs} src="{src}" alt="{caption}">'
    return f"<figure>{tag}<figcaption>{html.escape(name)}</figcaption></figure>"


PAGE_STYLE = """
  body { font: 15px/1.4 Georgia, serif; margin: 0; padding: 16px 24px; background: #f3efe6; color: #222; }
  header { display: flex; align-items: center; gap: 12px; margin-bottom: 12px; }
  h1 { font-size: 22px; margin: 0; }
  main { display: flex; flex-wrap: wrap; gap: 14px; }
  figure { margin: 0; width: 220px; }
  figure img { display: block; border-radius: 4px; object-fit: cover; }
  figcaption { font-size: 12px; color: #555; margin-top: 4px; }
  .spacer { height: 4200px; }
  /* hostile rules: page CSS must not hide, move or restyle the badges */
  genspot-badge { display: none !important; position: static !important; opacity: 0 !important; }
  button { background: lime !important; font-size: 30px !important; }
  div { color: magenta !important; letter-spacing: 4px !important; }
"""


def page_html(images: dict[str, SiteImage]) -> str:
    icon = images["icon"]
    figures = "\n".join(_figure(image) for name, image in images.items() if name != "icon")
    dynamic = images["dynamic"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>genspot test gallery</title><style>{PAGE_STYLE}</style></head>
<body>
<header><img data-test="icon" width="32" height="32" src="{icon.path}" alt="{icon.caption}"><h1>Weekend gallery</h1></header>
<main>
{figures}
</main>
<script>
  window.addEventListener("load", () => setTimeout(() => {{
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    Object.assign(img, {{ src: {json.dumps(dynamic.path)}, alt: {json.dumps(dynamic.caption)}, width: 220, height: 220 }});
    img.dataset.test = "dynamic";
    figure.append(img);
    document.getElementById("dynamic-slot").replaceWith(figure);
  }}, 300));
</script>
</body></html>"""


@dataclass
class TestSite:
    """The running site: `url(path)`, and `requests` made to it."""

    images: dict[str, SiteImage]
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    __test__ = False  # not a pytest test class

    def url(self, path: str = PAGE_PATH) -> str:
        return path if path.startswith("data:") else f"http://127.0.0.1:{self.port}{path}"

    def image_url(self, name: str) -> str:
        return self.url(self.images[name].path)

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [request for request in self.requests if request.path == path]


class SiteHandler(BaseHTTPRequestHandler):
    """The test sites' request handler base: quiet, keep-alive, and `reply()` without caching."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def seen(self, status: int) -> Request:
        """This request as a site records it."""
        path = self.path.split("?", 1)[0]
        return Request(path, self.headers.get("Cookie", ""), self.headers.get("User-Agent", ""), self.headers.get("Sec-Fetch-Dest", ""), status)

    def answer(self, site, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """Records this request in ``site.requests`` (under ``site.lock``), then replies."""
        with site.lock:
            site.requests.append(self.seen(status))
        self.reply(status, body, content_type, headers)

    def reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _handler_for(site: TestSite) -> type[BaseHTTPRequestHandler]:
    files = {image.path: image for image in site.images.values() if not image.path.startswith("data:")}
    fallbacks = {"/img/srcset-fallback.jpg", "/img/picture-fallback.jpg"}
    page = page_html(site.images).encode()

    class Handler(SiteHandler):
        def do_GET(self) -> None:
            cookie = self.headers.get("Cookie", "")
            path = self.path.split("?", 1)[0]
            headers = {}
            if path == PAGE_PATH:
                status, body, content_type = 200, page, "text/html; charset=utf-8"
                headers["Set-Cookie"] = f"{COOKIE}; Path=/; SameSite=Lax"
            elif path in files and (not path.startswith(PRIVATE_PREFIX) or COOKIE in cookie):
                status, body, content_type = 200, files[path].data, files[path].content_type
            elif path in files:
                status, body, content_type = 403, b"log in first", "text/plain"
            elif path in fallbacks:  # valid, so a wrong choice would show up as a request, not an error
                status, body, content_type = 200, files["/img/alt.jpg"].data, "image/jpeg"
            else:
                status, body, content_type = 404, b"not found", "text/plain"
            self.answer(site, status, body, content_type, headers)

    return Handler


class RunningSite:
    """Context manager: serves a site on a free port of 127.0.0.1 in a thread and sets its `port`.

    `handler` answers its requests; by default the gallery's (for a TestSite).
    """

    def __init__(self, site, handler: type[BaseHTTPRequestHandler] | None = None):
        self.site = site
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler or _handler_for(site))
        self.httpd.daemon_threads = True
        site.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test-site", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.site

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
