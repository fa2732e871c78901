"""Fetch settings and the fetched result: plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

DEFAULT_USER_AGENT = "genspot-fetch/0.1 (AI-image detector; fetches one image per request)"


class FetchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Limits for fetching one image URL chosen by an arbitrary web page.

    ``total_timeout`` bounds everything (DNS, every redirect hop, the whole body), so a
    server that trickles bytes cannot hold a worker longer than that. ``allow_loopback``
    exists for tests that serve images from 127.0.0.1; it never opens other private ranges.
    """

    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    total_timeout: float = 10.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 3
    allowed_ports: tuple[int, ...] = (80, 443)
    allow_loopback: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    max_connections: int = 100
    max_url_length: int = 8192

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "total_timeout", "max_bytes", "max_connections", "max_url_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FetchSettings.{name} must be positive, got {getattr(self, name)!r}")
        if self.max_redirects < 0:
            raise ValueError(f"FetchSettings.max_redirects must be >= 0, got {self.max_redirects!r}")
        if not self.allowed_ports or not all(0 < port < 65536 for port in self.allowed_ports):
            raise ValueError(f"FetchSettings.allowed_ports must be TCP ports, got {self.allowed_ports!r}")


VALIDATOR_PATTERN = r"^[\x21-\x7e][\x20-\x7e]{0,255}\Z"
"""An ETag or Last-Modified worth keeping: printable ASCII (safe to send back), at most 256 characters."""
_Validator = Annotated[str, msgspec.Meta(pattern=VALIDATOR_PATTERN)]


@dataclass(frozen=True, slots=True)
class Validators:
    """How to ask whether a response changed: the URL that answered (after redirects) and its
    ``ETag`` / ``Last-Modified`` (at least one is set). Decoding it with msgspec (a cache
    entry) checks both against :data:`VALIDATOR_PATTERN`."""

    url: str
    etag: _Validator | None = None
    last_modified: _Validator | None = None


@dataclass(frozen=True, slots=True)
class FetchedImage:
    """The body of the last response, its declared type, and the URL it came from.

    ``validators``: what that response offered for a later conditional request (None if
    nothing). ``not_modified``: the host answered 304 to the validators the fetch was given,
    so the body (``data``) is empty and the bytes known from before are still current.
    """

    data: bytes
    content_type: str | None
    final_url: str
    validators: Validators | None = None
    not_modified: bool = False
