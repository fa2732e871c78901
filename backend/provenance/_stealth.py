"""A1111 "stealth pnginfo": generation parameters hidden in the pixels' low bits.

Layout (the stealth-pnginfo extension): bits are read column by column (x outer, y inner)
from the alpha LSBs (signature ``stealth_pnginfo``, or ``stealth_pngcomp`` for gzip) or from
the R, G, B LSBs of each pixel in turn (``stealth_rgbinfo`` / ``stealth_rgbcomp``); then a
32-bit big-endian payload length in bits, then the payload (UTF-8 text, usually A1111
parameters; JSON for NovelAI). Only lossless formats can carry it.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
from PIL import Image

from ._limits import MAX_DECODED_PIXELS
from ._model import Signal

_MAX_PAYLOAD_BYTES = 1024 * 1024
_SIGNATURES = {  # signature -> (channels it is hidden in, gzip-compressed)
    b"stealth_pnginfo": ("A", False),
    b"stealth_pngcomp": ("A", True),
    b"stealth_rgbinfo": ("RGB", False),
    b"stealth_rgbcomp": ("RGB", True),
}
_HEADER_BITS = 15 * 8
_LENGTH_BITS = 32


def read_stealth(image: Image.Image) -> list[Signal]:
    width, height = image.size
    if image.format not in ("PNG", "WEBP") or width * height > MAX_DECODED_PIXELS:
        return []
    for channels in ("A", "RGB"):
        if set(channels) <= set(image.getbands()):
            signature = _bytes(image, channels, 0, _HEADER_BITS)
            if _SIGNATURES.get(signature, (None,))[0] == channels:
                return [_payload_signal(image, channels, signature)]
    return []


def _payload_signal(image: Image.Image, channels: str, signature: bytes) -> Signal:
    length = int.from_bytes(_bytes(image, channels, _HEADER_BITS, _LENGTH_BITS), "big")
    start = _HEADER_BITS + _LENGTH_BITS
    name = signature.decode()
    capacity = image.width * image.height * len(channels)
    if not 0 < length <= min(capacity - start, 8 * _MAX_PAYLOAD_BYTES):
        return Signal("stealth_png", f"{name} signature with an impossible length ({length} bits)")
    payload = _bytes(image, channels, start, length)
    text = (_gunzip(payload) if _SIGNATURES[signature][1] else payload).decode("utf-8", errors="replace")
    excerpt = " ".join(text.split())[:120]
    return Signal("stealth_png", f"{name} in pixel LSBs: {excerpt!r}", "ai", _generator(text))


def _bytes(image: Image.Image, channels: str, start: int, count: int) -> bytes:
    """``count`` bits from ``start``, columns first, packed into bytes; only the columns
    that hold the wanted bits are converted to arrays."""
    strip = image.crop((0, 0, math.ceil((start + count) / (image.height * len(channels))), image.height))
    pixels = np.asarray(strip.getchannel("A"))[..., None] if channels == "A" else np.asarray(strip.convert("RGB"))
    bits = (pixels.transpose(1, 0, 2).reshape(-1) & 1)[start : start + count]
    return np.packbits(bits).tobytes()


def _gunzip(payload: bytes) -> bytes:
    return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(payload, _MAX_PAYLOAD_BYTES)


def _generator(text: str) -> str:
    try:
        fields = json.loads(text)
    except ValueError:
        fields = None
    if isinstance(fields, dict) and isinstance(fields.get("Software"), str):
        return fields["Software"]
    return "AUTOMATIC1111 (stealth pnginfo)"
