"""How many URL entries one URL and one client may write, so made-up page origins cannot flush the cache.

URL entries are kept per URL and request variant, the page's origin among it
(:mod:`genspot.backend.cache.store`), so one URL asked for with 11,000 made-up ``page_url`` origins
would write 11,000 entries and push every other entry out of the in-process cache. Two bounds
hold: each URL keeps its ``per_url`` most recently written variants (writing another deletes its
oldest; tracked in each process, for the ``max_urls`` URLs written last), and each client writes
at most ``per_client`` entries per rate-limit window (past that its answers are still given,
only not remembered; counted in Redis when configured).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from genspot.backend.cache.ratelimit import RateLimiter
from genspot.backend.cache.store import Cache


class UrlEntryQuota:
    """Asked before a URL entry is written (:meth:`may_write`) and told after (:meth:`written`)."""

    def __init__(self, cache: Cache, per_url: int, per_client: int, window_s: int, shared: Cache | None, max_urls: int):
        self.per_url = per_url
        self._cache = cache
        self._writes = RateLimiter(per_client, window_s, shared)
        self._variants: OrderedDict[bytes, OrderedDict[str, None]] = OrderedDict()  # URL digest -> entry keys, oldest first
        self._max_urls = max_urls

    async def may_write(self, client: str) -> bool:
        """Count one entry written for ``client``; False once it is over its share of the window."""
        return await self._writes.check("url-entries", client) is None

    async def written(self, url: str, key: str) -> None:
        """``key`` (an entry of ``url``) was written: past ``per_url`` variants, the oldest goes."""
        digest = hashlib.sha256(url.encode("utf-8")).digest()[:16]
        variants = self._variants.pop(digest, None) or OrderedDict()
        variants.pop(key, None)
        variants[key] = None
        self._variants[digest] = variants
        while len(variants) > self.per_url:
            oldest, _ = variants.popitem(last=False)
            await self._cache.delete(oldest)
        while len(self._variants) > self._max_urls:
            self._variants.popitem(last=False)
