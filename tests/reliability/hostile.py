"""A loopback HTTP server that misbehaves on purpose, one path per way an image host can be hostile.

Every response is generated in memory; handlers that stall (hang, trickle, endless body) watch
a stop event so the server shuts down at once when the test ends.
"""

from __future__ import annotations

import functools
import gzip
import io
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler

from PIL import Image

from tests.fixtures.services import BackloggedHTTPServer

GZIP_BOMB_INFLATED = 256 * 1024 * 1024
"""Bytes the gzip bomb inflates to (about 250 KB on the wire)."""
DELAY_S = 1.0
"""How long ``/delayed.jpg`` thinks before answering."""


def jpeg(size: tuple[int, int] = (96, 64), color: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring ``width`` x ``height``, with one tiny IDAT."""

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def animated_gif(frames: int, size: tuple[int, int] = (32, 32)) -> bytes:
    images = []
    for index in range(frames):  # every frame differs, or Pillow merges identical neighbours
        frame = Image.new("L", size, 0)
        frame.putpixel((index % size[0], (index // size[0]) % size[1]), 255)
        images.append(frame)
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=10, loop=0)
    return buffer.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to claim ``width`` x ``height``."""
    data = bytearray(jpeg((64, 48)))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    """A real GIF whose logical screen claims ``width`` x ``height``."""
    data = bytearray(animated_gif(2))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def animated(fmt: str, frames: int) -> bytes:
    """An animated PNG (APNG) or WebP with ``frames`` distinct frames."""
    images = [Image.new("RGB", (32, 32), (index % 256, (index * 7) % 256, index // 256)) for index in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], **({"quality": 10} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def strip_png(width: int, height: int) -> bytes:
    """A real one-pixel-thin PNG: a few KB, yet gigabytes if resized whole to the model's scale."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 160, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def png_text_bomb(inflated: int = 200 * 1024 * 1024) -> bytes:
    """A valid PNG with a zTXt ``parameters`` chunk (where SD tools write) inflating to ``inflated`` bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "PNG")
    data = buffer.getvalue()
    bomb = _png_chunk(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"A" * inflated, 9))
    at = data.index(b"IDAT") - 4
    return data[:at] + bomb + data[at:]


def jpeg_with_segment(marker: int, payload: bytes) -> bytes:
    """A real JPEG with one extra APPn segment (e.g. 0xEB: C2PA/JUMBF, 0xE1: EXIF) right after SOI."""
    data = jpeg()
    return data[:2] + bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload + data[2:]


def gzip_bomb(inflated: int = GZIP_BOMB_INFLATED) -> bytes:
    buffer = io.BytesIO()
    block = b"\x00" * (1024 * 1024)
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as handle:
        for _ in range(inflated // len(block)):
            handle.write(block)
    return buffer.getvalue()


@functools.cache
def static_responses() -> dict[str, tuple[int, dict[str, str], bytes]]:
    """path -> (status, headers, body) for every path that answers at once (built once per process)."""
    return {
        "/ok.jpg": (200, {"Content-Type": "image/jpeg"}, jpeg()),
        "/ok-as-html.jpg": (200, {"Content-Type": "text/html"}, jpeg(color=(10, 200, 10))),
        "/html-as-png.png": (200, {"Content-Type": "image/png"}, b"<!doctype html><html><body>not an image</body></html>"),
        "/truncated.jpg": (200, {"Content-Type": "image/jpeg"}, jpeg((512, 512))[:600]),
        "/bomb.png": (200, {"Content-Type": "image/png"}, png_declaring(100_000, 100_000)),
        "/wide.png": (200, {"Content-Type": "image/png"}, png_declaring(2**31 - 1, 1)),
        "/frames.gif": (200, {"Content-Type": "image/gif"}, animated_gif(2000)),
        "/gzip-bomb.jpg": (200, {"Content-Type": "image/jpeg", "Content-Encoding": "gzip"}, gzip_bomb()),
        "/empty.jpg": (200, {"Content-Type": "image/jpeg"}, b""),
        "/not-found.jpg": (404, {"Content-Type": "text/plain"}, b"gone"),
        "/server-error.jpg": (500, {"Content-Type": "text/plain"}, b"boom"),
    }


class HostileServer:
    """Paths: see ``ROUTES`` in ``__enter__``; ``hits`` counts requests per path."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.static = static_responses()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "HostileServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                with owner._lock:
                    owner.hits[path] = owner.hits.get(path, 0) + 1
                if path in owner.static:
                    status, headers, body = owner.static[path]
                    self._respond(status, headers, body)
                elif path == "/hang":
                    owner.stop.wait()
                elif path == "/delayed.jpg":  # a good image, after DELAY_S: keeps requests in flight
                    if not owner.stop.wait(DELAY_S):
                        self._respond(*owner.static["/ok.jpg"])
                elif path == "/hang-after-headers.jpg":
                    self._headers({"Content-Type": "image/jpeg", "Content-Length": "100000"})
                    owner.stop.wait()
                elif path == "/trickle.jpg":
                    self._headers({"Content-Type": "image/jpeg", "Content-Length": "1000000"})
                    while not owner.stop.wait(0.1):
                        self.wfile.write(b"\xff")
                        self.wfile.flush()
                elif path == "/endless.jpg":
                    self._headers({"Content-Type": "image/jpeg", "Connection": "close"})
                    chunk = b"\xff\xd8" + b"\x00" * 65534
                    while not owner.stop.is_set():
                        self.wfile.write(chunk)
                elif path == "/lying-length.jpg":
                    self._respond(200, {"Content-Type": "image/jpeg", "Content-Length": "500"}, b"\x00" * 5_000_000)
                elif path == "/redirect-loop.jpg":
                    self._respond(302, {"Location": self.path}, b"")
                elif path == "/redirect" and self.path.startswith("/redirect?to="):
                    self._respond(302, {"Location": self.path.split("?to=", 1)[1]}, b"")
                else:
                    self._respond(404, {"Content-Type": "text/plain"}, b"no such path")

            def _headers(self, headers: dict[str, str], status: int = 200) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def _respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
                headers = {"Content-Length": str(len(body)), **headers}
                self._headers(headers, status)
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher gave up on us: that is the point

            def log_message(self, *args) -> None:
                pass

        self._server = BackloggedHTTPServer(("127.0.0.1", 0), Handler).start("hostile-images")
        self.port = self._server.server_address[1]
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self._server.stop()
