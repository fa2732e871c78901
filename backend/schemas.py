"""Request and response bodies of the HTTP API (msgspec Structs; Litestar derives /schema from them)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar.params import KwargDefinition

from genspot.backend.model.batcher import DEFAULT_PRIORITY
from genspot.backend.model.frames import Animation
from genspot.backend.provenance import Provenance

MAX_ITEMS = 64
Verdict = Literal["ai", "real", "uncertain"]
DecidedBy = Literal["provenance", "model"]


class DetectItem(msgspec.Struct, kw_only=True):
    """One image to judge: exactly one of ``url`` (http, https or data URL) or ``image_b64``.
    The route enforces it; OpenAPI can only say it, in the description ``DetectRequest`` gives
    (a ``KwargDefinition``: Litestar ignores a ``msgspec.Meta`` on a list's element type)."""

    id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=8 * 1024 * 1024)] | None = None
    image_b64: Annotated[bytes, msgspec.Meta(description="image file bytes, standard base64")] | None = None
    alt_text: Annotated[str, msgspec.Meta(max_length=16384)] | None = None
    page_url: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=16384,
                description="address of the page showing the image: its origin (scheme://host[:port]/) is sent "
                "as the download's Referer, as a browser would (none from an https page to an http image); "
                "ignored when not an http(s) URL",
            ),
        ]
        | None
    ) = None
    priority: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=7,
            description="how urgent the answer is, 0 (most) to 7 (least), as RFC 9218's urgency: waiting items go to the "
            "model lower value first, and one model call holds one priority (the extension sends 1 for images in the "
            "viewport, 4 for images near it)",
        ),
    ] = DEFAULT_PRIORITY


_ITEM_DESCRIPTION = (
    "One image to judge. Give exactly one of `url` (http, https or a base64 data URL) and `image_b64`: "
    "an item with both or neither is refused with 400."
)


class DetectRequest(msgspec.Struct, kw_only=True):
    items: Annotated[
        list[Annotated[DetectItem, KwargDefinition(description=_ITEM_DESCRIPTION)]],
        msgspec.Meta(min_length=1, max_length=MAX_ITEMS),
    ]


class Source(msgspec.Struct, frozen=True):
    """A likely origin: a generator name (probability given the image is AI) or ``real``.
    ``name``: how to show the label, from the bundle manifest's ``display_names`` (None: not given)."""

    label: str
    probability: float
    name: str | None = None


class Generator(Source, frozen=True, kw_only=True):
    """The generator an ``ai`` verdict names: the one the file's metadata names (``named_by``
    ``provenance``, probability 1; when the metadata decided, no other), or, when the model
    decided, its most likely source once its probability reaches the bundle's
    ``source_name_min_confidence`` (``named_by`` ``model``)."""

    named_by: DecidedBy


class Detection(msgspec.Struct, kw_only=True, frozen=True):
    """What the model and the metadata said about one image: the cached part of a result."""

    ai_probability: float
    sources: list[Source]
    provenance: Provenance | None = None
    animation: Animation | None = None


class ErrorInfo(msgspec.Struct, frozen=True):
    code: str
    message: str


class Thresholds(msgspec.Struct, frozen=True):
    """``ai`` from ``threshold + uncertain_band`` up, ``real`` below ``threshold - uncertain_band``,
    ``uncertain`` in between."""

    threshold: float
    uncertain_band: float


class ItemResult(msgspec.Struct, kw_only=True):
    id: str | None
    status: Literal["ok", "error"]
    verdict: Verdict | None = None
    decided_by: Annotated[
        DecidedBy | None,
        msgspec.Meta(description="whose evidence set the verdict: the file's provenance metadata or the model"),
    ] = None
    model_verdict: Annotated[
        Verdict | None, msgspec.Meta(description="what the model alone says, by `thresholds`")
    ] = None
    conflict: Annotated[
        str | None, msgspec.Meta(description="the evidence that disagrees with the verdict, in words; null when none does")
    ] = None
    ai_probability: float | None = None
    source: Source | None = None
    sources: list[Source] = msgspec.field(default_factory=list)
    generator: Annotated[
        Generator | None,
        msgspec.Meta(description="the generator to name, for an `ai` verdict only: the one the file's metadata names "
                                 "(when the metadata decided, no other), or, when the model decided, its top source when it "
                                 "is at least the bundle's source_name_min_confidence; null: generator unknown"),
    ] = None
    provenance: Provenance | None = None
    animation: Annotated[
        Animation | None,
        msgspec.Meta(description="for an animated image (GIF, APNG, WebP): how many frames a browser shows, which of them "
                                 "were judged (numbered from 0) and which one, the most AI-looking, gave the probabilities; "
                                 "null for a still image"),
    ] = None
    sha256: Annotated[str | None, msgspec.Meta(description="SHA-256 of the image bytes judged (hex)")] = None
    thresholds: Thresholds | None = None
    cached: bool = False
    model_version: str
    error: ErrorInfo | None = None


class DetectResponse(msgspec.Struct):
    results: list[ItemResult]


class InvalidParam(msgspec.Struct, frozen=True):
    """One field of a refused request: its path (``items[1].url``, ``body``) and what is wrong."""

    name: str
    reason: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A refused request as RFC 7807 problem details (``application/problem+json``)."""

    type: Annotated[str, msgspec.Meta(description="always about:blank: `status` says what happened")]
    title: Annotated[str, msgspec.Meta(description="the HTTP status phrase")]
    status: int
    detail: Annotated[str, msgspec.Meta(description="what went wrong, naming the field when one is to blame")]
    instance: Annotated[str, msgspec.Meta(description="the request's path")]
    invalid_params: Annotated[
        list[InvalidParam], msgspec.Meta(description="on 400 answers: each field to fix")
    ] = []


class ModelInfo(msgspec.Struct, kw_only=True):
    version: str
    labels: list[str]
    display_names: Annotated[
        dict[str, str], msgspec.Meta(description="label -> name to show, from the bundle manifest (labels without one: none)")
    ] = {}
    thresholds: Thresholds
    source_name_min_confidence: Annotated[
        float, msgspec.Meta(description="the least source probability at which results name the model's guessed generator")
    ]
    image_size: int
    kind: str
    dtype: str
    device: str
    alt_text: Annotated[
        str, msgspec.Meta(description="what the bundle's alt-text input can change: source_only (the generator's name, "
                                      "never p_ai), unused, or full (p_ai too)")
    ]
    sends_alt_text: Annotated[bool, msgspec.Meta(description="whether this service passes items' alt_text to the model")]


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not ready"]
    model: bool
    cache: str
    cache_kind: str
