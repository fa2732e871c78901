"""Result cache: Redis when configured (shared by every process), an in-process LRU otherwise.

Keys (all single-key commands, so valid on Redis Cluster; the hash tag keeps every entry of one
image on one slot):

- ``genspot:r:{<sha256 of image bytes>}:<model version>:<caption hash>`` -> encoded result
- ``genspot:u:{<sha256 of url>}:<digest of the request variant>`` -> :class:`UrlEntry`, what the
  URL served last when fetched with that variant (the headers the fetcher sends and the page
  origin its Referer comes from: hosts answer hot-links and some User-Agents differently).
  Trusted as is for ``url_fresh_s``, then revalidated with the host (``url_ttl_s`` at most).

Redis must never take the service down: every call has a short timeout, a failed call counts
against a circuit breaker, and any failure reads as a miss (or a skipped write).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec

from genspot.backend.cache.breaker import CircuitBreaker
from genspot.backend.fetch import Validators
from genspot.backend.settings import Settings

log = logging.getLogger(__name__)
PREFIX = "genspot"
REDIS_MAX_CONNECTIONS = 64


def result_key(image_sha256: str, model_version: str, caption_digest: str) -> str:
    return f"{PREFIX}:r:{{{image_sha256}}}:{model_version}:{caption_digest}"


def url_key(url: str, variant: str) -> str:
    """The URL entry's key: one per URL and request variant (``SafeFetcher.request_variant``)."""
    url_digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    variant_digest = hashlib.sha256(variant.encode("utf-8")).hexdigest()[:16]
    return f"{PREFIX}:u:{{{url_digest}}}:{variant_digest}"


class UrlEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What one URL served, fetched with one request variant: the bytes' SHA-256 (hex), when
    the host last confirmed it (Unix time, shared by every process), and what that response
    offered to revalidate it with (None: nothing; the entry can only be downloaded again)."""

    sha256: str
    checked_at: float
    validators: Validators | None = None


class CorruptEntry(ValueError):
    """A cache value that is not what this code writes (another writer, a bug, tampering)."""


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
encode_url_entry = msgspec.json.Encoder().encode
_decode_url_entry = msgspec.json.Decoder(UrlEntry).decode


def decode_url_entry(raw: bytes) -> UrlEntry:
    """The entry in ``raw``; :class:`CorruptEntry` if it is not one this code wrote."""
    try:
        entry = _decode_url_entry(raw)
    except msgspec.DecodeError as exc:
        raise CorruptEntry(f"not a URL entry: {exc}") from exc
    if not _SHA256_HEX.fullmatch(entry.sha256):
        raise CorruptEntry("the digest is not a SHA-256")
    return entry


class Cache(Protocol):
    """What the detection service needs from a cache; misses and failures both return ``None``."""

    kind: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, ttl_s: int) -> int | None:
        """Increment a counter that expires ``ttl_s`` after its first increment (rate limits)."""
        ...

    async def status(self) -> str:
        """``"ok"`` or a short reason the cache is being skipped (the service fails open)."""
        ...

    async def close(self) -> None: ...


class MemoryCache:
    """Bounded LRU with per-entry expiry, for one process (the embedded default)."""

    kind = "memory"

    def __init__(self, max_items: int = 10_000):
        self.max_items = max_items
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._entries[key] = (time.monotonic() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_items:
            self._entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def incr(self, key: str, ttl_s: int) -> int | None:
        value = await self.get(key)
        count = int(value or 0) + 1
        if value is None:
            await self.set(key, str(count).encode(), ttl_s)
        else:
            expires, _ = self._entries[key]
            self._entries[key] = (expires, str(count).encode())
        return count

    async def status(self) -> str:
        return "ok"

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Redis via redis-py asyncio, behind per-call timeouts and a circuit breaker."""

    kind = "redis"

    def __init__(
        self, url: str, timeout_s: float = 0.2, retries: int = 1, breaker: CircuitBreaker | None = None, cluster: bool = False
    ):
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.cluster import RedisCluster
        from redis.asyncio.retry import Retry
        from redis.backoff import ConstantBackoff

        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        options = dict(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(ConstantBackoff(0.01), retries))
        if cluster:
            self.client = RedisCluster.from_url(url, **options)
        else:
            # redis-py's default pool refuses the 101st concurrent call at once (MaxConnectionsError),
            # which a burst of pages reaches; a blocking pool makes callers queue for up to the timeout.
            pool = BlockingConnectionPool.from_url(url, max_connections=REDIS_MAX_CONNECTIONS, timeout=timeout_s, **options)
            self.client = Redis.from_pool(pool)

    async def _guarded(self, operation: str, make_call: Callable[[], Awaitable[Any]]) -> Any:
        """Run one Redis call; ``None`` on any failure (counted by the breaker) or while open."""
        if not self.breaker.allow():
            return None
        try:
            # The outer timeout bounds retries too: one call never costs much more than this.
            result = await asyncio.wait_for(make_call(), self.timeout_s * 2)
        except Exception as exc:  # any Redis, socket or timeout error means "no cache right now"
            self.breaker.record_failure()
            log.warning("redis %s failed (%s: %s); serving uncached, breaker %s", operation, type(exc).__name__, exc, self.breaker.state)
            return None
        self.breaker.record_success()
        return result

    async def get(self, key: str) -> bytes | None:
        return await self._guarded("GET", lambda: self.client.get(key))

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._guarded("SET", lambda: self.client.set(key, value, ex=ttl_s))

    async def delete(self, key: str) -> None:
        await self._guarded("DEL", lambda: self.client.delete(key))

    async def incr(self, key: str, ttl_s: int) -> int | None:
        async def incr_with_expiry() -> int:
            async with self.client.pipeline(transaction=True) as pipe:
                count, _ = await pipe.incr(key).expire(key, ttl_s, nx=True).execute()
            return int(count)

        return await self._guarded("INCR", incr_with_expiry)

    async def status(self) -> str:
        if await self._guarded("PING", self.client.ping):
            return "ok"
        return f"unavailable (breaker {self.breaker.state}; serving uncached)"

    async def close(self) -> None:
        await self.client.aclose()


def open_cache(settings: Settings) -> Cache:
    """The cache these settings ask for: Redis if ``redis_url`` is set, else in-process."""
    if not settings.redis_url:
        return MemoryCache(settings.memory_cache_items)
    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
    timeout_s = settings.redis_timeout_ms / 1000
    return RedisCache(settings.redis_url, timeout_s, settings.redis_retries, breaker, cluster=settings.redis_cluster)
