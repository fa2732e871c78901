"""The detection pipeline, shared by the HTTP API and ``genspot scan``.

For each item: bytes (from the cache's URL entry, a download, a data URL or the request) ->
SHA-256 -> cached result, or provenance + decode + preprocess (worker threads) -> the
micro-batcher -> cache. Items of one request run concurrently; an item's failure becomes
that item's error result and never touches the others, even an unexpected exception (logged
with its traceback, answered with code ``internal_error``). Identical work in flight at the
same time (the same URL fetched the same way, the same image and caption) is done once.

Work is shared fairly: an item that must be computed is admitted against the queue bounds
(:mod:`genspot.backend.pipeline.admission`: past them the request is refused with 503), then waits its
client's turn for a decode thread (:mod:`genspot.backend.model.dispatch`, within the pixel budget)
and for the model (:mod:`genspot.backend.model.batcher`), under one :class:`~genspot.backend.model.fair.Ticket`.
Work every requester has abandoned (a client that disconnected) is cancelled, not finished for
nobody; asked again at a more urgent priority, queued work moves up.

URL entries (``cache.url_key``) are per URL *and* request variant, so a page that gets a host's
hot-link placeholder never decides what another page's item gets. An entry is used without a
download for ``url_fresh_s``; after that a host that gave an ETag or Last-Modified is asked
with a conditional request (304: the entry stands, refreshed; 200: the new bytes replace it),
and an entry without validators is downloaded again. How many entries one URL and one client
may write is bounded (:mod:`genspot.backend.cache.url_entries`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from genspot.backend.cache import store as cache_keys
from genspot.backend.cache.store import Cache, CorruptEntry, UrlEntry
from genspot.backend.cache.url_entries import UrlEntryQuota
from genspot.backend.errors import INTERNAL_ERROR, ImageDecodeError, ImageTooLarge, ItemError, UnsupportedUrl
from genspot.backend.fetch import FetchedImage, Validators
from genspot.backend.metrics import Metrics
from genspot.backend.model.batcher import DEFAULT_PRIORITY, MicroBatcher
from genspot.backend.model.decode import decode_picture, header_pixels, png_pixels
from genspot.backend.model.dispatch import DecodeDispatcher
from genspot.backend.model.fair import LOCAL_CLIENT, Ticket
from genspot.backend.model.frames import Animation, FrameBudget, shown_frames
from genspot.backend.pipeline.admission import Admission, Overloaded
from genspot.backend.provenance import Provenance, Signal, read_provenance
from genspot.backend.schemas import (
    Detection,
    ErrorInfo,
    Generator,
    ItemResult,
    ModelInfo,
)
from genspot.backend.settings import Settings
from genspot.backend.verdict import (
    DEFAULT_SOURCE_NAME_MIN_CONFIDENCE,
    Decision,
    decide,
    display_names,
    named,
    named_generator,
    top_sources,
    verdict_thresholds,
)
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
    ``priority``: its place in the model's queue (lower first; see :mod:`genspot.backend.model.batcher`)."""

    id: str | None
    kind: str  # "url", "base64", "upload", "file": a metrics label
    url: str | None = None
    data: bytes | None = None
    caption: str | None = None
    page_url: str | None = None
    priority: int = DEFAULT_PRIORITY


@dataclass
class _Requester:
    """Who sent a request (for fair shares and queue bounds), and the pixels its items may still decode."""

    client: str
    pixels_left: int

    def charge(self, pixels: int) -> None:
        if pixels > self.pixels_left:
            raise ImageTooLarge(f"the request's images together have more pixels than the limit of one request; "
                                f"{self.pixels_left} were left and this one has {pixels}")
        self.pixels_left -= pixels


@dataclass(eq=False)
class _Flight:
    """Work shared by everyone asking for the same thing while it runs."""

    task: asyncio.Future
    ticket: Ticket | None
    waiting: int = field(default=0)


class DetectionService:
    """Judges items; holds no HTTP knowledge. Built by :func:`genspot.backend.pipeline.resources.open_service_resources`."""

    def __init__(
        self,
        settings: Settings,
        bundle: Bundle,
        cache: Cache,
        fetcher,
        batcher: MicroBatcher,
        metrics: Metrics,
        decoding: DecodeDispatcher,
        admission: Admission,
        url_quota: UrlEntryQuota,
    ):
        self.settings = settings
        self.bundle = bundle
        self.cache = cache
        self.fetcher = fetcher
        self.batcher = batcher
        self.metrics = metrics
        self.thresholds = verdict_thresholds(settings.threshold, settings.uncertain_band, bundle.spec.verdict_band)
        self.display_names = display_names(bundle.spec.display_names)
        measured = bundle.spec.source_name_min_confidence
        self.source_name_min_confidence = DEFAULT_SOURCE_NAME_MIN_CONFIDENCE if measured is None else measured
        self.uses_alt_text = bundle.alt_text_is_safe if settings.use_alt_text is None else settings.use_alt_text
        self.decoding = decoding
        self.admission = admission
        self.url_quota = url_quota
        self.frame_budget = FrameBudget(settings.animation_max_frames, settings.animation_max_pixels)
        self._inflight: dict[str, _Flight] = {}

    def model_info(self) -> ModelInfo:
        spec = self.bundle.spec
        return ModelInfo(
            version=self.bundle.version,
            labels=self.bundle.labels,
            display_names=self.display_names,
            thresholds=self.thresholds,
            source_name_min_confidence=self.source_name_min_confidence,
            image_size=self.bundle.image_size,
            kind=spec.kind,
            dtype=spec.dtype,
            device=str(self.bundle.device),
            alt_text=self.bundle.alt_text,
            sends_alt_text=self.uses_alt_text,
        )

    async def detect(self, items: list[ItemInput], client: str = LOCAL_CLIENT) -> list[ItemResult]:
        """One result per item, in order; never raises for a bad item. Raises :class:`Overloaded`
        when an item would go past the queue bounds (the request's other work is then cancelled)."""
        requester = _Requester(client, self.settings.max_pixels_per_request)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._detect_one(item, requester)) for item in items]
        except* Overloaded as refused:
            raise refused.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _detect_one(self, item: ItemInput, requester: _Requester) -> ItemResult:
        try:
            detection, cached, digest = await self._detection(item, requester)
            decision = decide(detection, self.thresholds, self.bundle.labels)
        except Overloaded:
            raise
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
            generator=self._generator(decision, detection),
            provenance=detection.provenance,
            animation=detection.animation,
            sha256=digest,
            thresholds=self.thresholds,
            cached=cached,
            model_version=self.bundle.version,
        )

    def _generator(self, decision: Decision, detection: Detection) -> Generator | None:
        generator = named_generator(decision, detection, self.source_name_min_confidence)
        if generator is None:
            return None
        return msgspec.structs.replace(generator, name=self.display_names.get(generator.label))

    def _error(self, item: ItemInput, code: str, message: str) -> ItemResult:
        self.metrics.items.labels(item.kind, "error").inc()
        self.metrics.item_errors.labels(code).inc()
        return ItemResult(id=item.id, status="error", model_version=self.bundle.version, error=ErrorInfo(code, message))

    async def _detection(self, item: ItemInput, requester: _Requester) -> tuple[Detection, bool, str]:
        """The detection, whether it came from the cache, and the image's SHA-256 (hex)."""
        caption = item.caption if self.uses_alt_text else None
        caption_digest = caption_hash(caption)
        if item.url is not None and not item.url.startswith("data:"):
            return await self._detection_for_url(item, requester, caption, caption_digest)
        data = item.data if item.url is None else _data_url_bytes(item.url)
        digest = hashlib.sha256(data).hexdigest()
        return await self._detection_for_bytes(data, digest, caption, caption_digest, Ticket(requester.client, item.priority), requester)

    async def _detection_for_bytes(
        self, data: bytes, digest: str, caption: str | None, caption_digest: str, ticket: Ticket, requester: _Requester
    ) -> tuple[Detection, bool, str]:
        found = await self._cached(digest, caption_digest)
        if found is not None:
            return found, True, digest
        key = cache_keys.result_key(digest, self.bundle.version, caption_digest)
        detection = await self._single_flight(f"compute:{key}", lambda: self._compute(key, data, caption, ticket, requester), ticket)
        return detection, False, digest

    async def _detection_for_url(
        self, item: ItemInput, requester: _Requester, caption: str | None, caption_digest: str
    ) -> tuple[Detection, bool, str]:
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
            await self._remember_url(item.url, key, UrlEntry(sha256=entry.sha256, checked_at=time.time(), validators=validators), requester)
            return found, True, entry.sha256
        digest = hashlib.sha256(fetched.data).hexdigest()
        await self._remember_url(item.url, key, UrlEntry(sha256=digest, checked_at=time.time(), validators=fetched.validators), requester)
        ticket = Ticket(requester.client, item.priority)
        return await self._detection_for_bytes(fetched.data, digest, caption, caption_digest, ticket, requester)

    async def _url_entry(self, key: str) -> UrlEntry | None:
        raw = await self.cache.get(key)
        if raw is None:
            return None
        try:
            return cache_keys.decode_url_entry(raw)
        except CorruptEntry as exc:
            log.warning("ignoring a corrupt URL cache entry %s (%s)", key, exc)
            return None

    async def _remember_url(self, url: str, key: str, entry: UrlEntry, requester: _Requester) -> None:
        """Write the URL entry, unless its client has written its share of them this window."""
        if await self.url_quota.may_write(requester.client):
            await self.cache.set(key, cache_keys.encode_url_entry(entry), self.settings.url_ttl_s)
            await self.url_quota.written(url, key)

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

    async def _compute(self, key: str, data: bytes, caption: str | None, ticket: Ticket, requester: _Requester) -> Detection:
        """Admitted, decoded in turn within the pixel budgets, judged by the model in turn; cached."""
        with self.admission.admit(ticket.client):
            pixels = png_pixels(data)
            if pixels is None:
                pixels = await self.decoding.run(ticket, header_pixels, data, self.settings.max_pixels)
            requester.charge(pixels)
            provenance, images, animation = await self.decoding.run(ticket, self._prepare, data, pixels=pixels)
            # a ticket holds one place in line: an animation's frames wait at places of their own
            tickets = [ticket] if len(images) == 1 else [Ticket(ticket.client, ticket.priority, ticket.arrival) for _ in images]
            answers = await asyncio.gather(*(self.batcher.submit(image, caption, t) for image, t in zip(images, tickets)))
        p_ai, p_source, animation = _most_ai_looking(answers, animation)
        detection = Detection(
            ai_probability=p_ai, sources=top_sources(p_source, self.bundle.labels), provenance=provenance, animation=animation
        )
        await self.cache.set(key, _encode(detection), self.settings.cache_ttl_s)
        return detection

    def _prepare(self, data: bytes) -> tuple[Provenance | None, list, Animation | None]:
        """Worker thread: metadata first (it needs no pixels), then the model's input tensors: one
        for a still image, one per sampled shown frame for an animation (:mod:`genspot.backend.model.frames`)."""
        provenance = _read_provenance(data)
        if provenance is not None:
            self.metrics.provenance.labels(provenance.verdict).inc()
        decoded = decode_picture(data, self.settings.max_pixels)
        if decoded.metadata_skipped:  # the pixels are judged; the result says what was not read
            provenance = _with_skipped(provenance, decoded.metadata_skipped)
        try:
            animated = shown_frames(decoded.pixels_only or data, self.frame_budget, self.settings.max_pixels)
            if animated is None:
                return provenance, [self.bundle.preprocess(decoded.picture)], None
            animation, frames = animated
            return provenance, [self.bundle.preprocess(frame) for frame in frames], animation
        except (OSError, ValueError) as exc:  # Pillow fails lazily on some truncated files
            raise ImageDecodeError(f"cannot decode image: {exc}") from exc

    async def _single_flight(self, key: str, start: Callable[[], Awaitable[T]], ticket: Ticket | None = None) -> T:
        """Run ``start()`` once for every caller asking for ``key`` while it runs; a later caller's
        more urgent ``ticket`` promotes the work. A cancelled caller (its client disconnected, its
        request was refused or answered 503 on shutdown) leaves the work running for the others;
        when the last one goes, the work is cancelled."""
        flight = self._inflight.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(start()), ticket)
            self._inflight[key] = flight
            flight.task.add_done_callback(lambda done: self._settled(key, flight))
        elif ticket is not None and flight.ticket is not None:
            flight.ticket.promote(ticket.priority)
        flight.waiting += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiting -= 1
            if not flight.waiting and not flight.task.done():
                self._forget(key, flight)
                flight.task.cancel()
                self.metrics.abandoned.labels(key.split(":", 1)[0]).inc()

    def _settled(self, key: str, flight: _Flight) -> None:
        self._forget(key, flight)
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved here: when every caller was cancelled, nobody else looks

    def _forget(self, key: str, flight: _Flight) -> None:
        if self._inflight.get(key) is flight:  # a later flight for the same key is not this one's to end
            del self._inflight[key]


def _most_ai_looking(answers: list, animation: Animation | None):
    """The model's answer for the most AI-looking picture (an animation's deciding frame), and
    the animation with the frames judged and the deciding one filled in."""
    deciding = max(range(len(answers)), key=lambda index: answers[index][0])
    p_ai, p_source = answers[deciding]
    if animation is not None:
        judged = animation.judged_frames[: len(answers)]
        animation = msgspec.structs.replace(animation, judged_frames=judged, deciding_frame=judged[deciding])
    return p_ai, p_source, animation


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
