"""Request-level errors as RFC 7807 problem details (``application/problem+json``).

Validation failures name the offending field in ``invalid_params`` (e.g. ``items[2].url``),
so a client developer sees at once what to fix. Item-level errors never come here. Bodies are
:class:`~genspot.backend.schemas.Problem` structs, the same type the OpenAPI schema documents
through :func:`problem_responses`, so the documentation cannot drift from what is sent.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from genspot.backend.errors import GenspotError, RequestError
from genspot.backend.schemas import InvalidParam, Problem

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_JSON_PATH = re.compile(r"`\$\.?(?P<path>[^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


_DOCUMENTED_REFUSALS = {
    400: "malformed request: `invalid_params` names each field to fix",
    401: "API keys are configured and the X-API-Key header is missing or unknown",
    403: "a browser request from an Origin that is not allowed (only the extension and configured origins)",
    413: "request body larger than the configured limit",
    415: "the body is not in the route's media type (application/json, or multipart/form-data for uploads)",
    429: "over a rate limit; the Retry-After header says in how many seconds to retry",
    503: "the work queue is full (for everyone or for this client), or the service is shutting down; "
    "the Retry-After header says in how many seconds to retry",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the refusals a route can answer with (``responses=`` of a handler)."""
    return {
        status: ResponseSpec(Problem, description=_DOCUMENTED_REFUSALS[status], media_type=PROBLEM_JSON, generate_examples=False)
        for status in statuses
    }


def problem(request: Request, status: int, detail: str, invalid_params: list[InvalidParam] | None = None, headers=None) -> Response:
    body = Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        invalid_params=invalid_params or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_of(error: dict[str, Any]) -> str:
    """``items[0].url`` from Litestar's error record (msgspec puts the JSON path in the message)."""
    message = str(error.get("message", ""))
    match = _JSON_PATH.search(message)
    path = match.group("path") if match else ""
    missing = _MISSING_FIELD.search(message)
    if missing:  # the path names the object; the missing field is the one to name
        return f"{path}.{missing.group(1)}" if path else missing.group(1)
    if path:
        return path
    key = str(error.get("key") or "")
    return "body" if key in {"", "data"} else key


def _validation_problem(request: Request, exc: ValidationException) -> Response:
    errors = exc.extra if isinstance(exc.extra, list) else []
    params = [InvalidParam(_field_of(error), str(error.get("message", "invalid value")).split(" - at ")[0]) for error in errors]
    detail = "; ".join(f"{param.name}: {param.reason}" for param in params) or str(exc.detail)
    return problem(request, 400, detail, params)


def _http_problem(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException):
        return _validation_problem(request, exc)
    if isinstance(exc.__cause__, SerializationException):  # the body did not parse at all
        reason = f"not valid JSON ({exc.detail})"
        return problem(request, 400, f"body: {reason}", [InvalidParam("body", reason)])
    return problem(request, exc.status_code, str(exc.detail), headers=exc.headers)


def _genspot_problem(request: Request, exc: GenspotError) -> Response:
    params = [InvalidParam(exc.field, exc.message)] if isinstance(exc, RequestError) else None
    return problem(request, exc.http_status, f"{exc.field}: {exc.message}" if params else exc.message, params)


_BODY_PARSERS = ("litestar._kwargs", "litestar._multipart", "litestar.serialization", "litestar.connection")
"""Modules that read and parse request bodies: an error raised inside them is the body's fault."""

_BODY_REASONS: dict[type[Exception], str] = {
    RecursionError: "not valid JSON (nested too deeply)",
    UnicodeDecodeError: "a multipart part without a filename must be UTF-8 text; send image files as parts "
    "with a filename (curl -F files=@a.jpg)",
}


def _raised_by_body_parsing(exc: BaseException) -> bool:
    frames = []
    traceback = exc.__traceback__
    while traceback is not None:
        frames.append(traceback.tb_frame.f_globals.get("__name__", ""))
        traceback = traceback.tb_next
    return any(module.startswith(_BODY_PARSERS) for module in frames)


def _unexpected_problem(request: Request, exc: Exception) -> Response:
    reason = next((text for kind, text in _BODY_REASONS.items() if isinstance(exc, kind)), None)
    if reason is not None and _raised_by_body_parsing(exc):  # hostile input Litestar does not turn into a 400
        return problem(request, 400, f"body: {reason}", [InvalidParam("body", reason)])
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, 500, "internal error; the server log has the details")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_problem,
    GenspotError: _genspot_problem,
    Exception: _unexpected_problem,
}
