"""Safe image fetching for URLs chosen by arbitrary web pages.

Public surface::

    async with SafeFetcher(FetchSettings(...)) as fetcher:
        image = await fetcher.fetch(url, page_url=page_url)   # FetchedImage(data, content_type, final_url, validators)
        again = await fetcher.fetch(url, page_url=page_url, validators=image.validators)  # again.not_modified on a 304

Errors are the FetchError family of ``genspot.backend.errors`` (codes ``unsupported_url``,
``blocked_address``, ``timeout``, ``too_large``, ``fetch_failed``). ``is_blocked(ip)`` is the
address policy on its own, for checks outside a fetch; ``referer_for(page_url, url)`` the
Referer header a fetch sends (the page's origin, as a browser's default policy would);
``fetcher.request_variant(page_url)`` what, besides the URL, a cached fetch result depends on.
"""

from ._addresses import is_blocked
from ._fetcher import SafeFetcher
from ._referer import referer_for
from ._resolve import Resolver, system_resolver
from ._settings import FetchedImage, FetchSettings, Validators

__all__ = ["FetchSettings", "FetchedImage", "Resolver", "SafeFetcher", "Validators", "is_blocked", "referer_for", "system_resolver"]
