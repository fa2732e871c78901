"""Open and close everything a detection service needs, in one place.

``genspot serve`` (through the app's lifespan) and ``genspot scan`` both use
:func:`open_service_resources`, so the local scan runs exactly the pipeline the server runs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from genspot.backend.cache.ratelimit import RateLimiter
from genspot.backend.cache.store import Cache, open_cache
from genspot.backend.cache.url_entries import UrlEntryQuota
from genspot.backend.fetch import SafeFetcher
from genspot.backend.metrics import Metrics
from genspot.backend.model.batcher import MicroBatcher
from genspot.backend.model.dispatch import DecodeDispatcher
from genspot.backend.pipeline.admission import Admission
from genspot.backend.pipeline.service import DetectionService
from genspot.backend.settings import Settings
from genspot.bundle import Bundle, load_bundle

log = logging.getLogger(__name__)


@dataclass
class ServiceResources:
    """The heavy, long-lived resources of one worker process (or one ``genspot scan``)."""

    settings: Settings
    bundle: Bundle
    cache: Cache
    metrics: Metrics
    service: DetectionService
    key_limiter: RateLimiter
    client_limiter: RateLimiter
    auth_failure_limiter: RateLimiter


@asynccontextmanager
async def open_service_resources(settings: Settings, bundle: Bundle | None = None) -> AsyncIterator[ServiceResources]:
    """Load the bundle (unless given), connect the cache, start fetcher and batcher; close all on exit."""
    if bundle is None:
        bundle = load_bundle(settings.bundle, device=settings.device)
    log.info("loaded bundle %s (version %s, %d generators)", settings.bundle, bundle.version, len(bundle.labels))
    metrics = Metrics()
    async with AsyncExitStack() as stack:
        cache = open_cache(settings)
        stack.push_async_callback(cache.close)
        decode_pool = ThreadPoolExecutor(max_workers=settings.decode_threads, thread_name_prefix="genspot-decode")
        stack.callback(decode_pool.shutdown, wait=True)
        fetcher = await stack.enter_async_context(SafeFetcher(settings.fetch_settings()))
        max_call_s = None if settings.batch_max_call_ms is None else settings.batch_max_call_ms / 1000
        shared_call_s = None if settings.batch_shared_call_ms is None else settings.batch_shared_call_ms / 1000
        batcher = await stack.enter_async_context(
            MicroBatcher(
                bundle.predict, settings.batch_max_size, settings.batch_max_wait_ms / 1000, metrics, max_call_s, settings.priority_age_s,
                shared_call_s,
            )
        )
        decoding = DecodeDispatcher(decode_pool, settings.decode_threads, settings.max_pixels_in_flight, settings.priority_age_s)
        admission = Admission(settings.queue_max_items, settings.queue_max_items_per_client, lambda: batcher.seconds_per_item)
        shared = cache if cache.kind == "redis" else None
        url_quota = UrlEntryQuota(
            cache, settings.url_variants_per_url, settings.url_entries_per_client, settings.rate_limit_window_s, shared,
            settings.memory_cache_items,
        )
        service = DetectionService(settings, bundle, cache, fetcher, batcher, metrics, decoding, admission, url_quota)
        yield ServiceResources(
            settings=settings,
            bundle=bundle,
            cache=cache,
            metrics=metrics,
            service=service,
            key_limiter=RateLimiter(settings.rate_limit_per_key, settings.rate_limit_window_s, shared),
            client_limiter=RateLimiter(settings.rate_limit_per_client, settings.rate_limit_window_s, shared),
            auth_failure_limiter=RateLimiter(settings.auth_failures_per_client, settings.rate_limit_window_s, shared),
        )
