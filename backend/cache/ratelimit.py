"""Fixed-window rate limits per API key and per client address.

Counters live in Redis when it is configured (so every process behind the load balancer
counts together) and in process memory otherwise, or while Redis is unreachable. API keys
shipped inside a browser extension are public: these limits are the real protection.
"""

from __future__ import annotations

import hashlib
import math
import time

from genspot.backend.cache.store import PREFIX, Cache, MemoryCache


class RateLimiter:
    """At most ``limit`` requests per ``window_s`` per identity; ``limit`` 0 disables."""

    def __init__(self, limit: int, window_s: int, shared: Cache | None = None):
        self.limit = limit
        self.window_s = max(1, window_s)
        self._shared = shared
        self._local = MemoryCache(100_000)

    async def check(self, scope: str, identity: str) -> float | None:
        """Count one request; ``None`` if allowed, else seconds until the window resets."""
        if self.limit <= 0:
            return None
        now, window, key = self._window(scope, identity)
        count = await self._shared.incr(key, self.window_s) if self._shared is not None else None
        if count is None:
            count = await self._local.incr(key, self.window_s)
        return self._verdict(count, now, window)

    async def exceeded(self, scope: str, identity: str) -> float | None:
        """Like :meth:`check` without counting: whether ``identity`` is already over the limit."""
        if self.limit <= 0:
            return None
        now, window, key = self._window(scope, identity)
        raw = await self._shared.get(key) if self._shared is not None else None
        if raw is None:
            raw = await self._local.get(key)
        try:
            count = int(raw or 0)
        except ValueError:  # not a counter: nothing counted
            count = 0
        return self._verdict(count, now, window)

    def _window(self, scope: str, identity: str) -> tuple[float, int, str]:
        now = time.time()
        window = int(now // self.window_s)
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]
        return now, window, f"{PREFIX}:rl:{{{scope}:{digest}}}:{window}"

    def _verdict(self, count: int, now: float, window: int) -> float | None:
        if count <= self.limit:
            return None
        return max(1.0, math.ceil((window + 1) * self.window_s - now))
