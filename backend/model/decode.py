"""Bytes -> one RGB picture, refusing what is not an image or would be too big to decode.

The pixel limit is checked from the header, before any pixel data is decoded, so a small
file that declares a huge canvas (a decompression bomb) costs nothing. Pillow's own bomb
guard (a warning, then an error, at a global threshold) is turned into our typed error so
it never escapes as an untyped exception or a stray warning. (``warnings.catch_warnings`` is
process-global; when decode threads race on it the worst case is one logged warning for an
image that our own, lower, pixel limit rejects anyway.)
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from genspot.backend.errors import GenspotError, ImageDecodeError, ImageTooLarge, NotAnImage
from genspot.imaging import to_rgb

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SIDE = 65_535
"""No web image is longer than this (JPEG's own limit). Decoding time grows with the rows, so a
77 KB PNG of 1 x 40,000,000 (within the pixel limit) took 3.6 s; refused from the header instead."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_HEADER = struct.Struct(">8sI4sII")  # signature, IHDR length, "IHDR", width, height
_PNG_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"acTL", b"fcTL", b"fdAT"})
"""What the pixels need, an APNG's animation included: without it the default image, which
browsers do not show when it is not part of the animation, would be what is judged."""
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF")
"""Web image formats only: no EPS (Ghostscript), TIFF codecs, or other exotic plugins.
MPO (phone photos with a gain map or depth image) opens through the JPEG plugin."""

_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE) -> Image.Image:
    """Parse the header only (lazy Pillow image), enforcing the format list and pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_available_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image is too large to decode: {exc}") from exc
    except UnidentifiedImageError as exc:
        if kind := _image_signature(data):
            raise ImageDecodeError(f"corrupt or truncated {kind} header") from exc
        raise NotAnImage(f"not a supported image ({', '.join(_available_formats())}): {_sniff(data)}") from exc
    except Exception as exc:  # a corrupt header can raise nearly anything inside a plugin
        raise ImageDecodeError(f"cannot read image header: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if max(width, height) > max_side:
        image.close()
        raise ImageTooLarge(f"image is {width}x{height}; no side may be longer than {max_side} pixels")
    return image


@dataclass(frozen=True)
class Decoded:
    """The picture, why the file's metadata was left out to decode it (None when it was not), and
    then the bytes that decoded (the PNG without its metadata chunks)."""

    picture: Image.Image
    metadata_skipped: str | None = None
    pixels_only: bytes | None = None


def decode_picture(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE) -> Decoded:
    """:func:`decode_image`, except that a PNG whose metadata chunks are oversized or broken (a 2 MB
    zTXt, a bad checksum) is decoded again without them: metadata must never cost the verdict."""
    try:
        return Decoded(decode_image(data, max_pixels, max_side))
    except ImageDecodeError as exc:
        if isinstance(exc, (NotAnImage, ImageTooLarge)) or not data.startswith(_PNG_SIGNATURE):
            raise
        pixels_only = _png_pixel_chunks(data)
        if pixels_only is None or pixels_only == data:
            raise
        picture = decode_image(pixels_only, max_pixels, max_side)
        return Decoded(picture, f"PNG metadata chunks were not read (oversized or broken: {exc.message})", pixels_only)


def png_pixels(data: bytes) -> int | None:
    """Width x height from a PNG's first chunk, read directly (its metadata chunks may be what
    makes Pillow's parser fail before the fallback of :func:`decode_picture`); None if not a PNG."""
    if len(data) < _PNG_HEADER.size:
        return None
    signature, _, kind, width, height = _PNG_HEADER.unpack_from(data)
    return width * height if signature == _PNG_SIGNATURE and kind == b"IHDR" else None


def header_pixels(data: bytes, max_pixels: int) -> int:
    """Width x height from the header (the errors decoding would give, early; a worker thread's job)."""
    image = open_image(data, max_pixels)
    try:
        return image.size[0] * image.size[1]
    finally:
        image.close()


def _png_pixel_chunks(data: bytes) -> bytes | None:
    """The PNG with only the chunks the pixels need, or None when its chunk structure is broken."""
    kept, at = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, end = data[at + 4 : at + 8], at + 12 + length
        if end > len(data):
            return None
        if kind in _PNG_PIXEL_CHUNKS:
            kept.append(data[at:end])
        at = end
        if kind == b"IEND":
            return b"".join(kept)
    return None


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE) -> Image.Image:
    """Decoded RGB picture: first frame, EXIF orientation applied, alpha flattened on white.

    Raises NotAnImage (``not_an_image``), ImageTooLarge (``too_large``) or
    ImageDecodeError (``decode_failed``, e.g. truncated or corrupt data).
    """
    image = open_image(data, max_pixels, max_side)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return to_rgb(image)
    except GenspotError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image is too large to decode: {exc}") from exc
    except Exception as exc:  # truncated/corrupt streams raise OSError, SyntaxError, ValueError...
        raise ImageDecodeError(f"cannot decode {image.format} image: {exc}") from exc
    finally:
        image.close()


def _available_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in FORMATS if name in Image.OPEN)


def _image_signature(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in _SIGNATURES.items() if data.startswith(magic)), None)


def _sniff(data: bytes) -> str:
    """A short description of what the bytes look like instead, for the error message."""
    head = data[:512].lstrip().lower()
    if not data:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "looks like HTML"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "looks like SVG (vector images are not supported)"
    return f"starts with {data[:8]!r}"
