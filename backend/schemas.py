"""Request and response bodies of the HTTP API (msgspec Structs; Litestar derives /schema from them)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from genspot.backend.provenance import Provenance

MAX_ITEMS = 64
Verdict = Literal["ai", "real", "uncertain"]


class DetectItem(msgspec.Struct, kw_only=True):
    """One image to judge: exactly one of ``url`` (http, https or data URL) or ``image_b64``."""

    id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=8 * 1024 * 1024)] | None = None
    image_b64: Annotated[bytes, msgspec.Meta(description="image file bytes, standard base64")] | None = None
    alt_text: Annotated[str, msgspec.Meta(max_length=16384)] | None = None
    page_url: Annotated[str, msgspec.Meta(max_length=16384)] | None = None


class DetectRequest(msgspec.Struct, kw_only=True):
    items: Annotated[list[DetectItem], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class Source(msgspec.Struct, frozen=True):
    """A likely origin: a generator name (probability given the image is AI) or ``real``."""

    label: str
    probability: float


class Detection(msgspec.Struct, kw_only=True, frozen=True):
    """What the model and the metadata said about one image: the cached part of a result."""

    ai_probability: float
    sources: list[Source]
    provenance: Provenance | None = None


class ErrorInfo(msgspec.Struct, frozen=True):
    code: str
    message: str


class ItemResult(msgspec.Struct, kw_only=True):
    id: str | None
    status: Literal["ok", "error"]
    verdict: Verdict | None = None
    ai_probability: float | None = None
    source: Source | None = None
    sources: list[Source] = msgspec.field(default_factory=list)
    provenance: Provenance | None = None
    cached: bool = False
    model_version: str
    error: ErrorInfo | None = None


class DetectResponse(msgspec.Struct):
    results: list[ItemResult]


class Thresholds(msgspec.Struct, frozen=True):
    """``ai`` above ``threshold + uncertain_band``, ``real`` below ``threshold - uncertain_band``."""

    threshold: float
    uncertain_band: float


class ModelInfo(msgspec.Struct, kw_only=True):
    version: str
    labels: list[str]
    thresholds: Thresholds
    image_size: int
    kind: str
    dtype: str
    device: str


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not ready"]
    model: bool
    cache: str
    cache_kind: str
