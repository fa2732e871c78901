"""decode_image: formats, first frame, orientation, and typed errors for hostile bytes."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from genspot.backend.errors import ImageDecodeError, ImageTooLarge, ItemError, NotAnImage
from genspot.backend.model.decode import decode_image

PROVENANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "provenance"


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient(size=(64, 48), mode="RGB") -> Image.Image:
    image = Image.linear_gradient("L").resize(size).convert(mode)
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_decodes_web_formats_to_rgb(fmt):
    decoded = decode_image(encode(gradient(), fmt))
    assert decoded.mode == "RGB" and decoded.size == (64, 48)


def test_decodes_an_mpo_phone_photo():
    path = PROVENANCE / "camera" / "iphone15pro_cards.jpg"
    if not path.exists():
        pytest.skip(f"provenance test data not found at {path}")
    decoded = decode_image(path.read_bytes())
    assert decoded.mode == "RGB" and decoded.size == (1071, 1428)


def test_animated_gif_gives_its_first_frame_quickly():
    frames = [Image.new("RGB", (16, 16), (i % 256, 0, 0)) for i in range(1000)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)
    started = time.monotonic()
    decoded = decode_image(data)
    assert time.monotonic() - started < 1.0
    assert decoded.getpixel((0, 0)) == (0, 0, 0)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_image(encode(gradient((40, 20)), "JPEG", exif=exif))
    assert decoded.size == (20, 40)


def test_transparency_is_flattened_on_white():
    decoded = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"))
    assert decoded.getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"<!doctype html><html><body>404</body></html>", "HTML"),
        (b"", "empty"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "starts with"),
        (b"{\"error\": \"not found\"}", "starts with"),
    ],
)
def test_non_images_are_not_an_image(data, hint):
    with pytest.raises(NotAnImage, match=hint) as error:
        decode_image(data)
    assert error.value.code == "not_an_image"


def test_formats_outside_the_web_list_are_refused():
    with pytest.raises(NotAnImage):
        decode_image(encode(gradient(), "TIFF"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_truncated_images_are_decode_failed(fmt):
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), fmt)
    with pytest.raises(ImageDecodeError) as error:
        decode_image(data[: len(data) // 2])
    assert error.value.code == "decode_failed"
    assert not isinstance(error.value, NotAnImage)


def _png_declaring(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header claims width x height (a decompression bomb header)."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (100_000, 100_000), (2**31 - 1, 2**31 - 1)])
def test_decompression_bomb_headers_are_too_large_before_decoding(width, height):
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape
        with pytest.raises(ImageTooLarge) as error:
            decode_image(_png_declaring(width, height))
    assert error.value.code == "too_large"
    assert time.monotonic() - started < 0.5


def test_pixel_limit_is_configurable():
    data = encode(gradient((100, 100)), "PNG")
    assert decode_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageTooLarge, match="100x100"):
        decode_image(data, max_pixels=9_999)


SAMPLES = [encode(gradient((32, 32)), fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_corrupted_images_never_raise_untyped_errors(sample, edits):
    data = bytearray(sample)
    for position, value in edits:
        data[position % len(data)] = value
    try:
        decoded = decode_image(bytes(data))
    except ItemError as exc:
        assert exc.code in ("not_an_image", "decode_failed", "too_large")
    else:
        assert decoded.mode == "RGB"
