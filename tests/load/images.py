"""A loopback image server with an unlimited supply of distinct images.

``/img/{k}.jpg`` serves picture ``k mod len(pictures)`` with ``k`` appended after the JPEG end
marker: decoders ignore trailing bytes, so every ``k`` decodes to a real picture while its
SHA-256 (the backend's cache key) is new. That makes "uncached" traffic cheap to produce
without synthesising pixels inside the measurement.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fixtures.services import BackloggedHTTPServer

DEV_SET = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dev"


@dataclass
class Picture:
    """One served picture and the caption that travels with it as alt-text."""

    data: bytes
    caption: str = ""


def dev_pictures(root: Path = DEV_SET, limit: int | None = None) -> list[Picture]:
    """The shared dev set's real JPEGs with their captions (empty list when absent)."""
    labels = root / "labels.csv"
    if not labels.is_file():
        return []
    with labels.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    return [Picture((root / row["image"]).read_bytes(), row["caption"]) for row in rows]


def synthetic_pictures(count: int, size: int = 256, seed: int = 0) -> list[Picture]:
    """Random-texture JPEGs, for machines without the dev set."""
    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range(count):
        pixels = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        pictures.append(Picture(buffer.getvalue()))
    return pictures


def load_pictures(directory: Path | None = None, limit: int | None = None) -> list[Picture]:
    """Pictures from ``directory`` (every *.jpg / *.png / *.webp), else the dev set, else synthetic."""
    if directory is not None:
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
        pictures = [Picture(p.read_bytes()) for p in files[:limit]]
        if not pictures:
            raise SystemExit(f"no images (*.jpg, *.png, *.webp) in {directory}")
        return pictures
    return dev_pictures(limit=limit) or synthetic_pictures(limit or 256)


@dataclass
class ImageServer:
    """Serves ``/img/{k}.jpg`` on 127.0.0.1 from memory; counts requests (proves cache skips)."""

    pictures: list[Picture]
    port: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def body(self, k: int) -> bytes:
        return self.pictures[k % len(self.pictures)].data + f"genspot-load-{k}".encode()

    def caption(self, k: int) -> str:
        return self.pictures[k % len(self.pictures)].caption

    def __enter__(self) -> "ImageServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                name = self.path.rsplit("/", 1)[-1].split(".", 1)[0]
                if not self.path.startswith("/img/") or not name.isdigit():
                    self.send_error(404)
                    return
                with owner._lock:
                    owner.requests += 1
                data = owner.body(int(name))
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = BackloggedHTTPServer(("127.0.0.1", self.port), Handler).start("load-images")
        self.port = self._server.server_address[1]
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    def url(self, k: int) -> str:
        return f"http://127.0.0.1:{self.port}/img/{k}.jpg"
