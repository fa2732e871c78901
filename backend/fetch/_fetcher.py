"""SafeFetcher: fetch one image URL chosen by an untrusted page, within fixed limits."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx

from genspot.backend.errors import FetchError, FetchTimeout, UnsupportedUrl

from ._body import ACCEPT_ENCODING, read_capped
from ._referer import page_origin, referer_for
from ._resolve import Resolver, resolve_public, system_resolver
from ._settings import VALIDATOR_PATTERN, FetchedImage, FetchSettings, Validators
from ._transport import Pin, PinnedTransport, pinned
from ._urls import Target, parse_target

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "image/avif,image/webp,image/apng,image/*;q=0.9,*/*;q=0.5"
_VALIDATOR = re.compile(VALIDATOR_PATTERN)


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

    def request_variant(self, page_url: str | None) -> str:
        """Everything besides the URL that shapes what a host answers a fetch for ``page_url``:
        the headers this fetcher sends (User-Agent, Accept, Accept-Encoding) and the page's
        origin, from which every hop's Referer follows. Equal variants get identical requests;
        cache what a fetch returned under the URL *and* this."""
        origin = page_origin(page_url) or ""
        return "\n".join((self.settings.user_agent, _ACCEPT, ACCEPT_ENCODING, origin))

    async def fetch(self, url: str, page_url: str | None = None, validators: Validators | None = None) -> FetchedImage:
        """The image bytes at ``url`` (after at most ``max_redirects`` redirects).

        ``page_url`` is the address of the page that shows the image: each hop sends what a
        browser would (:func:`referer_for`: the page's origin, never on an https -> http hop),
        an unusable one sends nothing. Hosts may answer differently by Referer (hot-link
        placeholders) or User-Agent, so results are only shared between equal
        :meth:`request_variant` values. With ``validators`` (from an earlier result), the hop
        to ``validators.url`` is a conditional request (If-None-Match / If-Modified-Since),
        and a 304 to it returns ``not_modified`` without a body.
        """
        if self._transport is None:
            raise RuntimeError("use SafeFetcher as 'async with SafeFetcher(settings) as fetcher'")
        total = self.settings.total_timeout
        try:
            async with asyncio.timeout(total):
                return await self._follow(url, page_url, validators)
        except TimeoutError as exc:
            raise FetchTimeout(f"no complete response within {total:g}s") from exc

    async def _follow(self, url: str | httpx.URL, page_url: str | None, validators: Validators | None) -> FetchedImage:
        for _hop in range(self.settings.max_redirects + 1):
            target = parse_target(url, self.settings)
            condition = validators if validators is not None and str(target.url) == validators.url else None
            response = await self._send(target, referer_for(page_url, target.url), condition)
            try:
                if response.status_code in _REDIRECTS:
                    url = _redirect_target(target, response)
                    log.debug("redirect %s -> %s", target.url, url)
                    continue
                if response.status_code == 304 and condition is not None:
                    return FetchedImage(b"", None, str(target.url), validators=condition, not_modified=True)
                if not 200 <= response.status_code < 300:
                    raise FetchError(f"HTTP {response.status_code} from {target.url.host}")
                data = await read_capped(response, self.settings.max_bytes)
                content_type = response.headers.get("content-type")
                return FetchedImage(data, content_type, str(target.url), validators=_validators_of(response, str(target.url)))
            finally:
                await response.aclose()
        raise FetchError(f"more than {self.settings.max_redirects} redirects")

    async def _send(self, target: Target, referer: str | None, condition: Validators | None) -> httpx.Response:
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
        if condition is not None and condition.etag is not None:
            headers["If-None-Match"] = condition.etag
        if condition is not None and condition.last_modified is not None:
            headers["If-Modified-Since"] = condition.last_modified
        request = httpx.Request("GET", target.url, headers=headers, extensions={"timeout": self._timeouts})
        with pinned(Pin(target.host, target.port, addresses)):
            return await self._transport.handle_async_request(request)


def _validators_of(response: httpx.Response, url: str) -> Validators | None:
    """The response's usable ETag and Last-Modified, or None when it has neither."""
    etag, last_modified = (response.headers.get(name) for name in ("etag", "last-modified"))
    etag = etag if etag is not None and _VALIDATOR.match(etag) else None
    last_modified = last_modified if last_modified is not None and _VALIDATOR.match(last_modified) else None
    return Validators(url, etag, last_modified) if etag or last_modified else None


def _redirect_target(target: Target, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise FetchError(f"HTTP {response.status_code} redirect without a Location header")
    try:
        return target.url.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsupportedUrl(f"malformed redirect location: {exc}") from exc
