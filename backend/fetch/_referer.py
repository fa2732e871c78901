"""The Referer a browser would send for an image shown on a page, under its default policy.

Some image hosts refuse hot-linked images that come without a Referer. Browsers default to
``strict-origin-when-cross-origin``: for a cross-origin image that is the page's origin only
(``scheme://host[:port]/``: no path, query, fragment or credentials), and nothing at all when
the request goes from an https page to an http URL. The origin is sent for a same-origin image
too (where a browser would send the full address): a page's path can carry a session or a
search, and hosts that check hot-linking look at the origin. The page address is a client's
hint: anything unusable gives no header, never an error.
"""

from __future__ import annotations

import re

import httpx

from ._urls import DEFAULT_PORTS

_ORIGIN = re.compile(r"https?://(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?/")
"""What a sent origin may look like: no character that could bend a header value."""


def referer_for(page_url: str | None, request_url: str | httpx.URL) -> str | None:
    """The Referer header to send with a request for ``request_url`` made for an image on
    ``page_url``, or None when none should be sent."""
    origin = page_origin(page_url)
    if origin is None:
        return None
    if origin.startswith("https:") and httpx.URL(request_url).scheme != "https":
        return None  # no downgrade: an https page's origin never travels over plain http
    return origin


def page_origin(page_url: str | None) -> str | None:
    """``scheme://host[:port]/`` of an http(s) address (port only when not the default), or None.

    Every Referer a fetch for ``page_url`` sends is this origin or nothing (which, hop by hop,
    depends on the hop's URL only), so two pages of one origin get identical requests.
    """
    if not page_url:
        return None
    try:
        url = httpx.URL(page_url)
        host = url.raw_host.decode("ascii")
    except (httpx.InvalidURL, TypeError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    default_port = DEFAULT_PORTS.get(url.scheme)
    port = default_port if url.port is None else url.port
    if default_port is None or not host or not 0 < port < 65536:
        return None
    host_part = f"[{host}]" if ":" in host else host
    port_part = "" if port == default_port else f":{port}"
    origin = f"{url.scheme}://{host_part}{port_part}/"
    return origin if _ORIGIN.fullmatch(origin) else None
