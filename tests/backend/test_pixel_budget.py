"""Pixels decoded at once and per request are bounded, on a real `genspot serve` (peak memory measured)."""

from __future__ import annotations

import base64
import io

import httpx
from PIL import Image

SIDE = 3162  # 10 megapixels: about 190 MiB while an RGBA PNG is decoded and flattened
MAX_PIXELS = 10_000_000


def _rgba_png(shade: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGBA", (SIDE, SIDE), (shade, 80, 160, 128)).save(buffer, "PNG")  # a few tens of KB
    return base64.b64encode(buffer.getvalue()).decode()


def _memory_mib(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (the peak so far) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def test_large_pictures_of_one_request_decode_in_turn_and_within_the_request_budget(backend_server, tiny_bundle):
    server = backend_server(
        tiny_bundle, max_pixels=MAX_PIXELS, max_pixels_in_flight=MAX_PIXELS, max_pixels_per_request=4 * MAX_PIXELS
    )
    warm = httpx.post(server.url + "/v1/detect", json={"items": [{"image_b64": _rgba_png(1)}]}, timeout=120)
    assert warm.json()["results"][0]["status"] == "ok"
    before = _memory_mib(server.process.pid, "VmRSS")
    items = [{"id": str(n), "image_b64": _rgba_png(10 + n)} for n in range(5)]
    response = httpx.post(server.url + "/v1/detect", json={"items": items}, timeout=120)
    peak = _memory_mib(server.process.pid, "VmHWM")
    assert peak - before < 450, f"decoding added {peak - before:.0f} MiB at its peak"  # four at once: about 760
    results = response.json()["results"]
    assert sorted(result["status"] for result in results) == ["error"] + ["ok"] * 4
    refused = next(result for result in results if result["status"] == "error")
    assert refused["error"]["code"] == "too_large" and "request" in refused["error"]["message"]
