"""URL policy: which URLs may be fetched at all, before any address is looked up."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

import httpx

from genspot.backend.errors import BlockedAddress, UnsupportedUrl

from ._addresses import is_blocked
from ._resolve import literal_address
from ._settings import FetchSettings

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[a-z0-9_.-]+")  # after httpx's IDNA encoding; IPv6 literals aside


@dataclass(frozen=True, slots=True)
class Target:
    """One hop: the URL to request and the (host, port) the connection pool will dial."""

    url: httpx.URL
    host: str
    port: int


def parse_target(url: str | httpx.URL, settings: FetchSettings) -> Target:
    """Validate ``url`` (scheme, credentials, host, port); raise UnsupportedUrl if it fails."""
    if isinstance(url, str) and len(url) > settings.max_url_length:
        raise UnsupportedUrl(f"URL longer than {settings.max_url_length} characters")
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        _refuse_odd_ipv4_literal(str(url))
        raise UnsupportedUrl(f"malformed URL: {exc}") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        raise UnsupportedUrl(f"only http and https URLs are fetched, not {parsed.scheme or 'a relative URL'!r}")
    if parsed.userinfo:
        raise UnsupportedUrl("URLs with credentials (user:password@) are not fetched")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise UnsupportedUrl("URL has no host")
    if ":" not in host and not _HOSTNAME.fullmatch(host):
        raise UnsupportedUrl(f"malformed host {host!r}")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    if port not in settings.allowed_ports:
        allowed = ", ".join(str(p) for p in settings.allowed_ports)
        raise UnsupportedUrl(f"port {port} is not allowed (allowed: {allowed})")
    return Target(url=parsed.copy_with(fragment=None), host=host, port=port)


def _refuse_odd_ipv4_literal(url: str) -> None:
    """httpx rejects some legacy IPv4 spellings (e.g. octal ``0177.0.0.1``) as malformed;
    report those that denote a blocked address as blocked, since that is what they are."""
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return
    address = literal_address(host) if host else None
    if address is not None and (reason := is_blocked(address)):
        raise BlockedAddress(f"{host} ({address}) is not a public address ({reason})")
