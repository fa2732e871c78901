"""SafeFetcher: fetch one image URL chosen by an untrusted page, within fixed limits."""

from __future__ import annotations

import asyncio
import logging

import httpx

from genspot.backend.errors import FetchError, FetchTimeout, UnsupportedUrl

from ._body import ACCEPT_ENCODING, read_capped
from ._referer import referer_for
from ._resolve import Resolver, resolve_public, system_resolver
from ._settings import FetchedImage, FetchSettings
from ._transport import Pin, PinnedTransport, pinned
from ._urls import Target, parse_target

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "image/avif,image/webp,image/apng,image/*;q=0.9,*/*;q=0.5"


class SafeFetcher:
    """Async context manager owning one connection pool; ``await fetch(url)`` per image.

    Every hop (the URL and each redirect target) is validated, resolved once, checked
    address by address, and connected to only at the checked addresses. Raises the
    FetchError family from ``genspot.backend.errors``; nothing else escapes.
    """

    def __init__(self, settings: FetchSettings | None = None, *, resolver: Resolver = system_resolver) -> None:
        self.settings = settings or FetchSettings()
        self._resolver = resolver
        self._transport: PinnedTransport | None = None
        self._timeouts = httpx.Timeout(
            connect=self.settings.connect_timeout,
            read=self.settings.read_timeout,
            write=self.settings.read_timeout,
            pool=self.settings.connect_timeout,
        ).as_dict()

    async def __aenter__(self) -> SafeFetcher:
        self._transport = PinnedTransport(max_connections=self.settings.max_connections)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def fetch(self, url: str, page_url: str | None = None) -> FetchedImage:
        """The image bytes at ``url`` (after at most ``max_redirects`` redirects).

        ``page_url`` is the address of the page that shows the image: each hop sends what a
        browser would (:func:`referer_for`: the page's origin, never on an https -> http hop),
        an unusable one sends nothing. Callers may cache the result per URL alone: image bytes
        do not vary with the Referer in practice (a host that refuses hot-links answers with
        an error).
        """
        if self._transport is None:
            raise RuntimeError("use SafeFetcher as 'async with SafeFetcher(settings) as fetcher'")
        total = self.settings.total_timeout
        try:
            async with asyncio.timeout(total):
                return await self._follow(url, page_url)
        except TimeoutError as exc:
            raise FetchTimeout(f"no complete response within {total:g}s") from exc

    async def _follow(self, url: str | httpx.URL, page_url: str | None) -> FetchedImage:
        for _hop in range(self.settings.max_redirects + 1):
            target = parse_target(url, self.settings)
            response = await self._send(target, referer_for(page_url, target.url))
            try:
                if response.status_code in _REDIRECTS:
                    url = _redirect_target(target, response)
                    log.debug("redirect %s -> %s", target.url, url)
                    continue
                if not 200 <= response.status_code < 300:
                    raise FetchError(f"HTTP {response.status_code} from {target.url.host}")
                data = await read_capped(response, self.settings.max_bytes)
                return FetchedImage(data=data, content_type=response.headers.get("content-type"), final_url=str(target.url))
            finally:
                await response.aclose()
        raise FetchError(f"more than {self.settings.max_redirects} redirects")

    async def _send(self, target: Target, referer: str | None) -> httpx.Response:
        addresses = await resolve_public(
            target.host,
            target.port,
            self._resolver,
            allow_loopback=self.settings.allow_loopback,
            timeout=self.settings.connect_timeout,
        )
        headers = {"User-Agent": self.settings.user_agent, "Accept": _ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
        if referer is not None:
            headers["Referer"] = referer
        request = httpx.Request("GET", target.url, headers=headers, extensions={"timeout": self._timeouts})
        with pinned(Pin(target.host, target.port, addresses)):
            return await self._transport.handle_async_request(request)


def _redirect_target(target: Target, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise FetchError(f"HTTP {response.status_code} redirect without a Location header")
    try:
        return target.url.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsupportedUrl(f"malformed redirect location: {exc}") from exc
