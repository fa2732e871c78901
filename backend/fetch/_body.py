"""Read a response body under a byte cap, decoding gzip/deflate ourselves.

Both the bytes on the wire and the decoded bytes are capped, and the decoder is never asked
for more than the remaining budget (zlib ``max_length``), so a gzip bomb costs at most
``max_bytes`` of memory before it is cut off.
"""

from __future__ import annotations

import zlib

import httpx

from genspot.backend.errors import FetchError, TooLarge

ACCEPT_ENCODING = "gzip, deflate"


class _Identity:
    def decode(self, chunk: bytes, budget: int) -> bytes:
        if len(chunk) > budget:
            raise TooLarge("response body is larger than the size limit")
        return chunk


class _Zlib:
    """gzip (wbits 31) or deflate (zlib-wrapped, falling back to raw as browsers do)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._started = False

    def decode(self, chunk: bytes, budget: int) -> bytes:
        try:
            out = self._decompressor.decompress(chunk, budget + 1)
        except zlib.error as exc:
            if self._gzip or self._started:
                raise FetchError(f"corrupt compressed body: {exc}") from exc
            self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
            self._started = True
            return self.decode(chunk, budget)
        self._started = True
        if len(out) > budget:
            raise TooLarge("decompressed response body is larger than the size limit")
        return out


def _decoder_for(content_encoding: str | None) -> _Identity | _Zlib:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(gzip=True)
    if encoding == "deflate":
        return _Zlib(gzip=False)
    raise FetchError(f"unsupported content-encoding {encoding!r}")


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, or TooLarge as soon as either the wire or decoded size exceeds the cap."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"response declares {int(declared)} bytes; the limit is {max_bytes}")
    decoder = _decoder_for(response.headers.get("content-encoding"))
    body = bytearray()
    wire_bytes = 0
    async for chunk in response.aiter_raw():
        wire_bytes += len(chunk)
        if wire_bytes > max_bytes:
            raise TooLarge(f"response body is larger than {max_bytes} bytes")
        body += decoder.decode(chunk, max_bytes - len(body))
    return bytes(body)
