"""``create_app(settings)``: the Litestar application of the detection service.

Settings are passed in, never read at import time. The lifespan opens the service resources
(bundle, cache, fetcher, batcher, metrics) onto ``app.state.resources`` and closes them on
shutdown; handlers get them by dependency injection (``controllers.DEPENDENCIES``); from
the server's SIGTERM on, requests that cannot finish in time are answered 503
(:mod:`genspot.backend.api.shutdown`); a request whose client disconnects is cancelled
(:mod:`genspot.backend.api.disconnect`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

import genspot
from genspot.backend.api.access import API_KEY_HEADER, SCHEMA_PATH, schema_guard
from genspot.backend.api.browser import browser_guard
from genspot.backend.api.controllers import DEPENDENCIES, DetectController, FeedbackController, HealthController
from genspot.backend.api.disconnect import cancel_on_disconnect
from genspot.backend.api.json_body import StrictJsonRequest
from genspot.backend.api.problems import EXCEPTION_HANDLERS
from genspot.backend.api.shutdown import Drain
from genspot.backend.model.allocator import keep_freed_memory
from genspot.backend.pipeline.resources import open_service_resources
from genspot.backend.settings import Settings
from genspot.bundle import Bundle


def _request_metrics(app: ASGIApp) -> ASGIApp:
    """Count requests and time them by route template (bounded label values)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, record_status)
        finally:
            resources = getattr(scope["app"].state, "resources", None)
            if resources is not None:
                route = scope.get("path_template", "unmatched")
                resources.metrics.requests.labels(route, str(status)).inc()
                resources.metrics.request_latency.labels(route).observe(time.perf_counter() - started)

    return middleware


def create_app(settings: Settings, bundle: Bundle | None = None) -> Litestar:
    """The service for ``settings``; pass an already loaded ``bundle`` to skip loading it (tests)."""
    drain = Drain(settings.graceful_shutdown_s)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        with drain.on_signals():
            async with open_service_resources(settings, bundle) as resources:
                app.state.resources = resources
                try:
                    yield
                finally:
                    del app.state.resources

    cors = CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_origin_regex=settings.cors_origin_regex,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["content-type", API_KEY_HEADER.lower()],
        max_age=3600,
    )
    return Litestar(
        route_handlers=[DetectController, FeedbackController, HealthController],
        dependencies=DEPENDENCIES,
        lifespan=[lifespan],
        middleware=[_request_metrics, drain.middleware, cancel_on_disconnect],
        guards=[browser_guard, schema_guard],
        exception_handlers=EXCEPTION_HANDLERS,
        cors_config=cors,
        request_max_body_size=settings.max_request_bytes,
        request_class=StrictJsonRequest,
        openapi_config=OpenAPIConfig(
            title="genspot",
            version=genspot.__version__,
            description="Tell which images are AI-generated and which generator most likely made them.",
            path=SCHEMA_PATH,
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )


def create_app_from_env() -> Litestar:
    """Factory for uvicorn worker processes: settings from ``GENSPOT_*`` (set by ``genspot serve``).
    The worker is a process of its own, so from here on it keeps the model's freed memory
    (:mod:`genspot.backend.model.allocator`: a process-wide policy, never applied where the service
    shares its process, as under a test client)."""
    keep_freed_memory()
    return create_app(Settings.from_env())
