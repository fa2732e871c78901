"""Metadata can only limit provenance reading, never the verdict: a PNG whose text chunks are
oversized or broken is still judged by its pixels (and the result says what was skipped).
Dimensions no web image has are refused from the header, before a pixel is decoded."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from litestar.testing import TestClient
from PIL import Image

from genspot.backend.api.app import create_app
from genspot.backend.model.decode import decode_picture, open_image

from backend_helpers import b64

MB = 1024 * 1024


def _chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(size=(48, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _with_chunk(chunk: bytes, where: bytes = b"IDAT") -> bytes:
    """The test PNG with ``chunk`` inserted before the first ``where`` chunk (IDAT, or IEND: after the pixels)."""
    data = _png()
    at = data.index(where) - 4
    return data[:at] + chunk + data[at:]


METADATA_CASES = {
    "zTXt inflating to 2 MB, before the pixels": _with_chunk(_chunk(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"A" * 2 * MB, 9))),
    "zTXt inflating to 2 MB, after the pixels": _with_chunk(_chunk(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"A" * 2 * MB, 9)), b"IEND"),
    "compressed iTXt inflating to 2 MB": _with_chunk(_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(b"<" * 2 * MB, 9))),
    "tEXt with a bad checksum": _with_chunk(_chunk(b"tEXt", b"parameters\x00Steps: 20, Sampler: Euler", crc=1234)),
    "zTXt with an unknown compression method": _with_chunk(_chunk(b"zTXt", b"parameters\x00\x07junk")),
}


@pytest.mark.parametrize("case", list(METADATA_CASES))
def test_broken_metadata_leaves_the_pixels_readable(case):
    decoded = decode_picture(METADATA_CASES[case])
    assert decoded.picture.size == (48, 32)
    assert decoded.picture.getpixel((10, 10)) == (200, 40, 90)
    assert decoded.metadata_skipped and "metadata" in decoded.metadata_skipped


def test_ordinary_metadata_is_not_skipped():
    decoded = decode_picture(_with_chunk(_chunk(b"tEXt", b"Comment\x00hello")))
    assert decoded.metadata_skipped is None and decoded.picture.size == (48, 32)


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings)) as test_client:
        yield test_client


def test_an_image_hiding_behind_oversized_metadata_is_still_judged(client):
    items = [{"id": case, "image_b64": b64(data)} for case, data in METADATA_CASES.items()]
    response = client.post("/v1/detect", json={"items": items})
    assert response.status_code == 200, response.text
    for result in response.json()["results"]:
        assert result["status"] == "ok", result
        assert result["verdict"] in {"ai", "real", "uncertain"}
        skipped = [signal for signal in result["provenance"]["signals"] if signal["kind"] == "skipped"]
        assert len(skipped) == 1 and "metadata" in skipped[0]["detail"], result["provenance"]


def _strip_png(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height``, written directly (Pillow would take seconds for 40 million rows)."""
    row = b"\x00" + b"\x80" * width
    compressor = zlib.compressobj(9)
    rows_per_piece = max(1, MB // len(row))
    pieces = [compressor.compress(row * min(rows_per_piece, height - start)) for start in range(0, height, rows_per_piece)]
    pixels = b"".join(pieces) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def tall_strip() -> bytes:
    return _strip_png(1, 40_000_000)  # about 77 KB; 40 million rows to decode


def test_the_1_by_40_million_strip_is_refused_from_its_header(tall_strip, client):
    """40 million pixels is within the pixel limit, but no web image is 40 million pixels long;
    decoding it took 3.6 s. It is refused before decoding (a generous bound: well under 1 s)."""
    assert len(tall_strip) < 200_000
    with pytest.raises(Exception) as refused:
        open_image(tall_strip)
    assert refused.value.code == "too_large" and "40000000" in refused.value.message
    started = time.perf_counter()
    (result,) = client.post("/v1/detect", json={"items": [{"image_b64": b64(tall_strip)}]}).json()["results"]
    assert result["status"] == "error" and result["error"]["code"] == "too_large", result
    assert "side" in result["error"]["message"]
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("size", [(4_000_000, 1), (1, 4_000_000), (70_000, 200)])
def test_sides_over_the_limit_are_refused(size):
    with pytest.raises(Exception) as refused:
        open_image(_strip_png(*size))
    assert refused.value.code == "too_large"


def test_the_longest_allowed_side_is_decoded():
    assert decode_picture(_strip_png(65_535, 1)).picture.size == (65_535, 1)
