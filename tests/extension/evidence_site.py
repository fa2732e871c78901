"""A small site for the evidence tests, served on a free port of 127.0.0.1 (never 80 or 443):
a camera JPEG (Canon EXIF), a Photoshop edit whose intact C2PA manifest declares no AI (a
real file from ../shared/data/provenance, signed by Adobe; no trust list is checked here),
a Stable Diffusion PNG (provenance proves AI), an image the browser shows but nobody else may
download (the "could not check" case), and a CSS background (only the context menu can check
it); a second page shows a picture in an iframe (also for the context menu). Every request is
recorded; the server is extension_site's.

The Content Credentials site (``running_c2pa_site``, no shared data needed) shows two pictures
signed here by made-up certificates (tests/fixtures/c2pa_files.py) with the words of a Google
AI image's manifest: one intact, one changed after signing. Its second page shows the intact
one beside a picture whose label says only "Made with AI" (it names no generator).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from extension_site import Request, RunningSite, SiteHandler
from PIL import Image, ImageOps, PngImagePlugin

from tests.fixtures.c2pa_files import AI, GOOGLE_LIKE, signed_jpeg, tampered
from tests.fixtures.services import SD_PARAMETERS

PROVENANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "provenance"
C2PA_EDIT = PROVENANCE / "c2pa" / "edit_photoshop_no_ai.jpg"
PAGE_PATH = "/evidence.html"
SHOWN_ONLY_PATH = "/img/shown-only.jpg"  # served to <img> loads only: a fetch() (the bytes fallback) gets 500
FRAMED_PAGE_PATH = "/framed.html"  # a page whose only picture is inside an iframe
FRAME_PATH = "/frame.html"
FRAMED_IMAGE_PATH = "/img/framed.png"
C2PA_PAGE_PATH = "/credentials.html"
C2PA_NAMES_PAGE_PATH = "/labels.html"  # a label that names its maker beside one that names none
UNNAMED_LABEL = [{"action": "c2pa.created", "digitalSourceType": AI, "description": "Made with AI"}]


def _picture(seed: int, size: int = 256) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    pixels = np.stack([np.sin(7 * x + seed), np.cos(5 * y - seed), np.sin(3 * (x + y))], -1) * 100 + 128 + rng.normal(0, 10, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def camera_jpeg() -> bytes:
    """A camera JPEG (Canon EXIF). Its pixels are the C2PA edit's, mirrored: the tiny test model
    gives them an AI probability well inside (0, 1), so backend thresholds can make the model
    call it either real or AI (the model scores the generated pictures 0)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS REBEL T3"
    return _jpeg(ImageOps.mirror(Image.open(C2PA_EDIT).convert("RGB")), exif=exif)


def sd_png(seed: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", SD_PARAMETERS)
    buffer = io.BytesIO()
    _picture(seed).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def make_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type)."""
    return {
        "/img/camera.jpg": (camera_jpeg(), "image/jpeg"),
        "/img/c2pa-edit.jpg": (C2PA_EDIT.read_bytes(), "image/jpeg"),
        "/img/sd.png": (sd_png(2), "image/png"),
        "/img/background.png": (sd_png(3), "image/png"),
        FRAMED_IMAGE_PATH: (sd_png(5), "image/png"),
        SHOWN_ONLY_PATH: (_jpeg(_picture(4)), "image/jpeg"),
    }


PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evidence</title>
<style>
  body {{ margin: 0; padding: 16px; display: flex; flex-wrap: wrap; gap: 16px; font: 14px sans-serif; }}
  img, .hero {{ display: block; width: 220px; height: 220px; }}
  .hero {{ background: #ddd url(/img/background.png) center / cover no-repeat; }}
  .hero span {{ display: block; padding: 8px; }}
</style></head>
<body>
  <img data-test="camera" src="/img/camera.jpg" alt="a street at noon">
  <img data-test="c2pa-edit" src="/img/c2pa-edit.jpg" alt="an edited photo">
  <img data-test="sd" src="/img/sd.png" alt="a lighthouse">
  <img data-test="shown-only" src="{SHOWN_ONLY_PATH}" alt="a picture behind a wall">
  <div data-test="background" class="hero"><span>Welcome</span></div>
</body></html>"""

FRAMED_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>framed</title></head>
<body><p>An embedded gallery:</p><iframe src="{FRAME_PATH}" width="300" height="300" title="gallery"></iframe></body></html>"""

FRAME = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><style>body {{ margin: 8px; }} img {{ display: block; width: 220px; height: 220px; }}</style></head>
<body><img data-test="framed" src="{FRAMED_IMAGE_PATH}" alt="a harbour at dusk"></body></html>"""


def _pictures_page(title: str, pictures: list[tuple[str, str, str]]) -> str:
    """A page of 220 px pictures side by side: (data-test name, src, alt) each."""
    images = "\n".join(f'  <img data-test="{name}" src="{src}" alt="{alt}">' for name, src, alt in pictures)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ margin: 0; padding: 16px; display: flex; gap: 16px; }} img {{ display: block; width: 220px; height: 220px; }}</style></head>
<body>
{images}
</body></html>"""


SIGNED = ("signed", "/img/signed.jpg", "a generated picture")
C2PA_PAGE = _pictures_page("credentials", [SIGNED, ("tampered", "/img/tampered.jpg", "a generated picture, changed after signing")])
C2PA_NAMES_PAGE = _pictures_page("labels", [SIGNED, ("unnamed", "/img/unnamed.jpg", "a picture labelled AI by an unnamed tool")])

PAGES = {PAGE_PATH: PAGE, FRAMED_PAGE_PATH: FRAMED_PAGE, FRAME_PATH: FRAME, C2PA_PAGE_PATH: C2PA_PAGE, C2PA_NAMES_PAGE_PATH: C2PA_NAMES_PAGE}


def make_c2pa_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) of the Content Credentials page's pictures."""
    return {
        "/img/signed.jpg": (signed_jpeg(GOOGLE_LIKE, picture=_picture(6)), "image/jpeg"),
        "/img/tampered.jpg": (tampered(signed_jpeg(GOOGLE_LIKE, picture=_picture(7))), "image/jpeg"),
        "/img/unnamed.jpg": (signed_jpeg(UNNAMED_LABEL, picture=_picture(8)), "image/jpeg"),
    }


@dataclass
class EvidenceSite:
    files: dict[str, tuple[bytes, str]]
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = PAGE_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(site: EvidenceSite) -> type[SiteHandler]:
    class Handler(SiteHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in PAGES:
                status, body, kind = 200, PAGES[path].encode(), "text/html; charset=utf-8"
            elif path == SHOWN_ONLY_PATH and self.headers.get("Sec-Fetch-Dest", "") != "image":
                status, body, kind = 500, b"images here are for <img> only", "text/plain"
            elif path in site.files:
                status, (body, kind) = 200, site.files[path]
            else:
                status, body, kind = 404, b"not found", "text/plain"
            self.answer(site, status, body, kind)

    return Handler


def running_evidence_site() -> RunningSite:
    """Context manager giving the running EvidenceSite (extension_site's server, this site's pages)."""
    site = EvidenceSite(make_files())
    return RunningSite(site, _handler(site))


def running_c2pa_site() -> RunningSite:
    """The same, serving only the Content Credentials page's pictures."""
    site = EvidenceSite(make_c2pa_files())
    return RunningSite(site, _handler(site))
