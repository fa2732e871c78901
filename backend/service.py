"""The detection pipeline, shared by the HTTP API and ``genspot scan``.

For each item: bytes (from the cache's URL entry, a download, a data URL or the request) ->
SHA-256 -> cached result, or provenance + decode + preprocess (worker threads) -> the
micro-batcher -> cache. Items of one request run concurrently; an item's failure becomes
that item's error result and never touches the others, even an unexpected exception (logged
with its traceback, answered with code ``internal_error``). Identical work in flight at the
same time (the same URL fetched the same way, the same image and caption) is done once.

URL entries (``cache.url_key``) are per URL *and* request variant, so a page that gets a host's
hot-link placeholder never decides what another page's item gets. An entry is used without a
download for ``url_fresh_s``; after that a host that gave an ETag or Last-Modified is asked
with a conditional request (304: the entry stands, refreshed; 200: the new bytes replace it),
and an entry without validators is downloaded again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from genspot.backend import cache as cache_keys
from genspot.backend.batcher import DEFAULT_PRIORITY, MicroBatcher
from genspot.backend.cache import Cache, CorruptEntry, UrlEntry
from genspot.backend.decode import decode_picture
from genspot.backend.errors import INTERNAL_ERROR, ImageDecodeError, ItemError, UnsupportedUrl
from genspot.backend.fetch import FetchedImage, Validators
from genspot.backend.metrics import Metrics
from genspot.backend.provenance import Provenance, Signal, read_provenance
from genspot.backend.schemas import (
    Detection,
    ErrorInfo,
    ItemResult,
    ModelInfo,
    Thresholds,
)
from genspot.backend.settings import Settings
from genspot.backend.verdict import decide, display_names, named, top_sources
from genspot.bundle import Bundle
from genspot.text import caption_hash

log = logging.getLogger(__name__)
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Detection).decode


@dataclass(frozen=True)
class ItemInput:
    """One image to judge, however it arrived: ``url`` to download, or ``data`` already in hand.
    ``page_url``: the page showing the image, sent on as its origin in the download's Referer.
    ``priority``: its place in the model's queue (lower first; see :mod:`genspot.backend.batcher`)."""

    id: str | None
    kind: str  # "url", "base64", "upload", "file": a metrics label
    url: str | None = None
    data: bytes | None = None
    caption: str | None = None
    page_url: str | None = None
    priority: int = DEFAULT_PRIORITY


class DetectionService:
    """Judges items; holds no HTTP knowledge. Built by :func:`genspot.backend.resources.open_service_resources`."""

    def __init__(
        self,
        settings: Settings,
        bundle: Bundle,
        cache: Cache,
        fetcher,
        batcher: MicroBatcher,
        metrics: Metrics,
        decode_pool: Executor,
    ):
        self.settings = settings
        self.bundle = bundle
        self.cache = cache
        self.fetcher = fetcher
        self.batcher = batcher
        self.metrics = metrics
        self.thresholds = Thresholds(settings.threshold, settings.uncertain_band)
        self.display_names = display_names(bundle.spec.display_names)
        self.uses_alt_text = bundle.alt_text_is_safe if settings.use_alt_text is None else settings.use_alt_text
        self._decode_pool = decode_pool
        self._inflight: dict[str, asyncio.Future] = {}

    def model_info(self) -> ModelInfo:
        spec = self.bundle.spec
        return ModelInfo(
            version=self.bundle.version,
            labels=self.bundle.labels,
            display_names=self.display_names,
            thresholds=self.thresholds,
            image_size=self.bundle.image_size,
            kind=spec.kind,
            dtype=spec.dtype,
            device=str(self.bundle.device),
            alt_text=self.bundle.alt_text,
            sends_alt_text=self.uses_alt_text,
        )

    async def detect(self, items: list[ItemInput]) -> list[ItemResult]:
        """One result per item, in order; never raises for a bad item."""
        return list(await asyncio.gather(*(self._detect_one(item) for item in items)))

    async def _detect_one(self, item: ItemInput) -> ItemResult:
        try:
            detection, cached, digest = await self._detection(item)
            decision = decide(detection, self.thresholds, self.bundle.labels)
        except ItemError as exc:
            return self._error(item, exc.code, exc.message)
        except Exception:  # a bug costs its item only; CancelledError is no Exception and passes
            log.exception("unexpected error judging item %r (%s input)", item.id, item.kind)
            return self._error(item, INTERNAL_ERROR, "internal error; the server log has the details")
        self.metrics.items.labels(item.kind, "ok").inc()
        return ItemResult(
            id=item.id,
            status="ok",
            verdict=decision.verdict,
            decided_by=decision.decided_by,
            model_verdict=decision.model_verdict,
            conflict=decision.conflict,
            ai_probability=round(detection.ai_probability, 6),
            source=named([decision.source], self.display_names)[0],
            sources=named(detection.sources, self.display_names),
            provenance=detection.provenance,
            sha256=digest,
            thresholds=self.thresholds,
            cached=cached,
            model_version=self.bundle.version,
        )

    def _error(self, item: ItemInput, code: str, message: str) -> ItemResult:
        self.metrics.items.labels(item.kind, "error").inc()
        self.metrics.item_errors.labels(code).inc()
        return ItemResult(id=item.id, status="error", model_version=self.bundle.version, error=ErrorInfo(code, message))

    async def _detection(self, item: ItemInput) -> tuple[Detection, bool, str]:
        """The detection, whether it came from the cache, and the image's SHA-256 (hex)."""
        caption = item.caption if self.uses_alt_text else None
        caption_digest = caption_hash(caption)
        if item.url is not None and not item.url.startswith("data:"):
            return await self._detection_for_url(item, caption, caption_digest)
        data = item.data if item.url is None else _data_url_bytes(item.url)
        return await self._detection_for_bytes(data, hashlib.sha256(data).hexdigest(), caption, caption_digest, item.priority)

    async def _detection_for_bytes(
        self, data: bytes, digest: str, caption: str | None, caption_digest: str, priority: int
    ) -> tuple[Detection, bool, str]:
        found = await self._cached(digest, caption_digest)
        if found is not None:
            return found, True, digest
        key = cache_keys.result_key(digest, self.bundle.version, caption_digest)
        detection = await self._single_flight(f"compute:{key}", lambda: self._compute(key, data, caption, priority))
        return detection, False, digest

    async def _detection_for_url(self, item: ItemInput, caption: str | None, caption_digest: str) -> tuple[Detection, bool, str]:
        """Skip the download while the URL entry is fresh, revalidate it once stale, else download."""
        key = cache_keys.url_key(item.url, self.fetcher.request_variant(item.page_url))
        entry = await self._url_entry(key)
        found = await self._cached(entry.sha256, caption_digest) if entry is not None else None
        validators = None
        if found is not None:  # only an entry whose result is at hand can save the download
            if time.time() - entry.checked_at < self.settings.url_fresh_s:
                self.metrics.cache.labels("url", "hit").inc()
                return found, True, entry.sha256
            validators = entry.validators
        self.metrics.cache.labels("url", "miss" if found is None else "stale").inc()
        fetched = await self._single_flight(f"fetch:{key}:{validators}", lambda: self._download(item, validators))
        if fetched.not_modified:
            self.metrics.cache.labels("url", "revalidated").inc()
            await self._remember_url(key, entry.sha256, validators)
            return found, True, entry.sha256
        digest = hashlib.sha256(fetched.data).hexdigest()
        await self._remember_url(key, digest, fetched.validators)
        return await self._detection_for_bytes(fetched.data, digest, caption, caption_digest, item.priority)

    async def _url_entry(self, key: str) -> UrlEntry | None:
        raw = await self.cache.get(key)
        if raw is None:
            return None
        try:
            return cache_keys.decode_url_entry(raw)
        except CorruptEntry as exc:
            log.warning("ignoring a corrupt URL cache entry %s (%s)", key, exc)
            return None

    async def _remember_url(self, key: str, digest: str, validators: Validators | None) -> None:
        entry = UrlEntry(sha256=digest, checked_at=time.time(), validators=validators)
        await self.cache.set(key, cache_keys.encode_url_entry(entry), self.settings.url_ttl_s)

    async def _cached(self, digest: str, caption_digest: str) -> Detection | None:
        raw = await self.cache.get(cache_keys.result_key(digest, self.bundle.version, caption_digest))
        self.metrics.cache.labels("result", "hit" if raw else "miss").inc()
        if not raw:
            return None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            log.warning("ignoring an undecodable cache entry for %s", digest)
            return None

    async def _download(self, item: ItemInput, validators: Validators | None) -> FetchedImage:
        """The image at ``item.url``, asked for as an image on ``item.page_url`` (the Referer's
        origin); a conditional request when ``validators`` are given."""
        try:
            return await self.fetcher.fetch(item.url, item.page_url, validators)
        except ItemError as exc:
            self.metrics.fetch_errors.labels(exc.code).inc()
            raise

    async def _compute(self, key: str, data: bytes, caption: str | None, priority: int) -> Detection:
        loop = asyncio.get_running_loop()
        provenance, image = await loop.run_in_executor(self._decode_pool, self._prepare, data)
        p_ai, p_source = await self.batcher.submit(image, caption, priority)
        detection = Detection(
            ai_probability=p_ai, sources=top_sources(p_source, self.bundle.labels), provenance=provenance
        )
        await self.cache.set(key, _encode(detection), self.settings.cache_ttl_s)
        return detection

    def _prepare(self, data: bytes):
        """Worker thread: metadata first (it needs no pixels), then the model's input tensor."""
        provenance = _read_provenance(data)
        if provenance is not None:
            self.metrics.provenance.labels(provenance.verdict).inc()
        decoded = decode_picture(data, self.settings.max_pixels)
        if decoded.metadata_skipped:  # the pixels are judged; the result says what was not read
            provenance = _with_skipped(provenance, decoded.metadata_skipped)
        try:
            return provenance, self.bundle.preprocess(decoded.picture)
        except (OSError, ValueError) as exc:  # Pillow fails lazily on some truncated files
            raise ImageDecodeError(f"cannot decode image: {exc}") from exc

    async def _single_flight(self, key: str, start: Callable[[], Awaitable[T]]) -> T:
        """Run ``start()`` once for every caller asking for ``key`` while it runs; a caller
        that is cancelled (a request answered 503 on shutdown) leaves the work running for the others."""
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        task = asyncio.ensure_future(start())
        self._inflight[key] = task

        def settled(done: asyncio.Future) -> None:
            self._inflight.pop(key, None)
            if not done.cancelled():
                done.exception()  # retrieved here: when every caller was cancelled, nobody else looks

        task.add_done_callback(settled)
        return await asyncio.shield(task)


def _read_provenance(data: bytes) -> Provenance | None:
    """What the metadata says, ``None`` when it says nothing; it never fails an item."""
    try:
        provenance = read_provenance(data)
    except Exception:  # third-party metadata parsers raise anything on hostile files
        log.warning("provenance reading failed", exc_info=True)
        return None
    return None if provenance.verdict == "unknown" and not provenance.signals else provenance


def _with_skipped(provenance: Provenance | None, reason: str) -> Provenance:
    skipped = Signal("skipped", reason)
    if provenance is None:
        return Provenance(verdict="unknown", generator=None, signals=[skipped])
    return msgspec.structs.replace(provenance, signals=[*provenance.signals, skipped])


def _data_url_bytes(url: str) -> bytes:
    """The payload of a ``data:[<type>][;base64],<data>`` URL (pages inline small images)."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise UnsupportedUrl("malformed data URL (no comma)")
    if not header.endswith(";base64"):
        raise UnsupportedUrl("only base64 data URLs are supported")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError("data URL payload is not valid base64") from exc
