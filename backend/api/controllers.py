"""HTTP routes: thin translations between requests and :class:`DetectionService` calls.

Handlers name what they need (``service``, ``settings``, ``metrics``, ...) and get it by
dependency injection: :data:`DEPENDENCIES` provides it from the worker's
:class:`ServiceResources`, which the app's lifespan keeps on ``app.state.resources``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State, UploadFile
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import ServiceUnavailableException, TooManyRequestsException
from litestar.handlers import BaseRouteHandler
from litestar.params import Body

from genspot.backend.api.access import API_KEY_HEADER, access_guard, client_address, client_identity
from genspot.backend.api.feedback import FeedbackReceipt, FeedbackRequest, FeedbackStore
from genspot.backend.api.problems import problem_responses
from genspot.backend.cache.ratelimit import RateLimiter
from genspot.backend.errors import RequestError
from genspot.backend.metrics import Metrics
from genspot.backend.pipeline.admission import Overloaded
from genspot.backend.pipeline.resources import ServiceResources
from genspot.backend.pipeline.service import DetectionService, ItemInput
from genspot.backend.schemas import (
    MAX_ITEMS,
    DetectRequest,
    DetectResponse,
    Health,
    ModelInfo,
    Readiness,
)
from genspot.backend.settings import Settings


@dataclass
class UploadForm:
    """``files``: one or more images; ``alt_text``: optional captions, in the same order as the files."""

    files: list[UploadFile]
    alt_text: list[str] = field(default_factory=list)


def _item_inputs(request: DetectRequest) -> list[ItemInput]:
    inputs = []
    for index, item in enumerate(request.items):
        if (item.url is None) == (item.image_b64 is None):
            raise RequestError("give exactly one of url or image_b64", field=f"items[{index}]")
        kind = "url" if item.url is not None else "base64"
        inputs.append(
            ItemInput(
                id=item.id, kind=kind, url=item.url, data=item.image_b64, caption=item.alt_text, page_url=item.page_url,
                priority=item.priority,
            )
        )
    return inputs


_ACCESS_REFUSALS = problem_responses(401, 429)  # access_guard
_BODY_REFUSALS = problem_responses(400, 401, 403, 413, 415, 429)
_DETECT_REFUSALS = problem_responses(400, 401, 403, 413, 415, 429, 503)


def _unavailable(overloaded: Overloaded) -> ServiceUnavailableException:
    return ServiceUnavailableException(overloaded.message, headers={"Retry-After": str(overloaded.retry_after_s)})


async def overload_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """503 before the body is read when the work queue is already full for this client."""
    resources = connection.app.state.resources
    try:
        resources.service.admission.check(client_identity(connection))
    except Overloaded as refused:
        resources.metrics.overloaded.inc()
        raise _unavailable(refused) from None


async def _detect(service: DetectionService, inputs: list[ItemInput], request: Request) -> DetectResponse:
    try:
        return DetectResponse(await service.detect(inputs, client_identity(request)))
    except Overloaded as refused:
        service.metrics.overloaded.inc()
        raise _unavailable(refused) from None


class DetectController(Controller):
    path = "/v1"
    guards = [access_guard]
    tags = ["detection"]

    @post("/detect", status_code=200, summary="Judge images given as URLs or base64", responses=_DETECT_REFUSALS,
          guards=[overload_guard])
    async def detect(self, data: DetectRequest, service: DetectionService, request: Request) -> DetectResponse:
        return await _detect(service, _item_inputs(data), request)

    @post("/detect/upload", status_code=200, summary="Judge uploaded image files (multipart)", responses=_DETECT_REFUSALS,
          guards=[overload_guard])
    async def detect_upload(
        self, data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)], service: DetectionService,
        request: Request,
    ) -> DetectResponse:
        files = data.files if isinstance(data.files, list) else [data.files]
        captions = [data.alt_text] if isinstance(data.alt_text, str) else list(data.alt_text)
        if not 1 <= len(files) <= MAX_ITEMS:
            raise RequestError(f"send between 1 and {MAX_ITEMS} files", field="files")
        if len(captions) > len(files):
            raise RequestError("more alt_text fields than files", field="alt_text")
        captions += [None] * (len(files) - len(captions))
        inputs = [
            ItemInput(id=upload.filename or None, kind="upload", data=await upload.read(), caption=caption)
            for upload, caption in zip(files, captions, strict=True)
        ]
        return await _detect(service, inputs, request)

    @get("/model", summary="The served model: version, generator labels, verdict thresholds", responses=_ACCESS_REFUSALS)
    async def model(self, service: DetectionService) -> ModelInfo:
        return service.model_info()


_FEEDBACK_WINDOW_S = 3600


@dataclass(frozen=True)
class FeedbackDesk:
    """Where wrong-verdict reports go, and how many one client may send."""

    store: FeedbackStore
    limiter: RateLimiter




class FeedbackController(Controller):
    path = "/v1"
    guards = [access_guard]
    tags = ["moderation"]

    @post(
        "/feedback",
        status_code=201,
        summary="Report a wrong verdict (stored unverified, with the image's SHA-256)",
        responses=problem_responses(400, 401, 413, 429),
        request_max_body_size=16 * 1024,
    )
    async def feedback(
        self, data: FeedbackRequest, request: Request, settings: Settings, feedback_desk: FeedbackDesk
    ) -> FeedbackReceipt:
        # JSON only: a web page's "simple" cross-origin POST (text/plain, form) cannot send this
        # content type without a CORS preflight, which page origins fail.
        if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
            raise RequestError("send the report as application/json", field="content-type")
        client = client_address(request, settings.trust_forwarded_for)
        retry_after = await feedback_desk.limiter.check("feedback", client)
        if retry_after is not None:
            raise TooManyRequestsException(
                f"too many reports from this address; retry in {int(retry_after)} s", headers={"Retry-After": str(int(retry_after))}
            )
        key = request.headers.get(API_KEY_HEADER.lower()) if settings.api_keys else None  # valid, or refused by now
        reporter = feedback_desk.store.reporter_id(client, key)
        return await asyncio.to_thread(feedback_desk.store.add, data, reporter)


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", summary="Liveness: the process answers")
    async def healthz(self) -> Health:
        return Health("ok")

    @get("/readyz", summary="Readiness: model loaded; the cache reachable, or skipped (fail-open)")
    async def readyz(self, resources: ServiceResources | None) -> Response[Readiness]:
        if resources is None:
            return Response(Readiness(status="not ready", model=False, cache="not started", cache_kind="none"), status_code=503)
        cache_status = await resources.cache.status()
        return Response(Readiness(status="ready", model=True, cache=cache_status, cache_kind=resources.cache.kind))

    @get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4; charset=utf-8")
    async def metrics(self, metrics: Metrics) -> bytes:
        return metrics.exposition()


# ------------------------------------------------------------------------------ dependencies


def _resources(state: State) -> ServiceResources | None:
    """The worker's resources; None outside the lifespan (before startup, after shutdown)."""
    return getattr(state, "resources", None)


def _started(resources: ServiceResources | None) -> ServiceResources:
    if resources is None:
        raise ServiceUnavailableException("the service is starting or shutting down")
    return resources


def _service(resources: ServiceResources | None) -> DetectionService:
    return _started(resources).service


def _settings(resources: ServiceResources | None) -> Settings:
    return _started(resources).settings


def _metrics(resources: ServiceResources | None) -> Metrics:
    return _started(resources).metrics


def _feedback_desk(state: State, settings: Settings) -> FeedbackDesk:
    """Made on first use (one per process): an instance nobody reports to never creates the file."""
    if not hasattr(state, "feedback_desk"):
        state.feedback_desk = FeedbackDesk(
            FeedbackStore(settings.feedback_path), RateLimiter(settings.feedback_per_client_per_hour, _FEEDBACK_WINDOW_S)
        )
    return state.feedback_desk


DEPENDENCIES = {
    "resources": Provide(_resources, sync_to_thread=False),
    "service": Provide(_service, sync_to_thread=False),
    "settings": Provide(_settings, sync_to_thread=False),
    "metrics": Provide(_metrics, sync_to_thread=False),
    "feedback_desk": Provide(_feedback_desk, sync_to_thread=False),
}
"""What handlers may ask for by name; :func:`genspot.backend.api.app.create_app` installs them app-wide."""
