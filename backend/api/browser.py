"""Refuse what a web page can make its visitors' browsers send: a guard on every route.

A page may make a browser POST ``text/plain``, ``application/x-www-form-urlencoded`` or
``multipart/form-data`` bodies to any address (127.0.0.1 included) without a CORS preflight;
CORS only hides the answer from the page, the work is done anyway. So, on every state-changing
route, before the body is read:

- a body is accepted only in the media type the route declares: JSON only as
  ``application/json`` (415 otherwise), uploads only as ``multipart/form-data``;
- a request that carries an ``Origin`` (browsers send one on every POST) is refused (403) unless
  that origin is allowed: ``cors_origins`` or ``cors_origin_regex`` (by default any Chrome or
  Firefox extension). ``check_origin=false`` turns this off. Requests without an ``Origin``
  (curl, servers, other tools) are not browser requests and are served as before.

The service's own address is not allowed implicitly: under DNS rebinding a hostile page *is*
same-origin with it (``http://evil.example:8000``), which a Host comparison would accept.
"""

from __future__ import annotations

import functools
import re

from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UnsupportedMediaType(ClientException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


@functools.cache
def _origin_pattern(regex: str | None) -> re.Pattern[str] | None:
    return re.compile(regex) if regex else None


def origin_allowed(origin: str, allowed: tuple[str, ...], regex: str | None) -> bool:
    """Whether a browser ``Origin`` may call state-changing routes (the CORS policy's origins)."""
    pattern = _origin_pattern(regex)
    return origin in allowed or (pattern is not None and pattern.fullmatch(origin) is not None)


@functools.cache
def _body_media_type(handler: BaseRouteHandler) -> str | None:
    """The media type the handler's ``data`` is read as, or None when it reads no body."""
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    media_type = getattr(data.kwarg_definition, "media_type", None) or RequestEncodingType.JSON
    return str(getattr(media_type, "value", media_type))


async def browser_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """403 for a disallowed browser Origin, 415 for a body in another media type than the route's."""
    if connection.scope["method"] in SAFE_METHODS:
        return
    settings = connection.app.state.resources.settings
    origin = connection.headers.get("origin")
    if settings.check_origin and origin is not None and not origin_allowed(origin, settings.cors_origins, settings.cors_origin_regex):
        raise PermissionDeniedException(
            f"requests from the browser Origin {origin!r} are refused: only the extension and the origins in "
            "GENSPOT_CORS_ORIGINS may call this service from a browser"
        )
    expected = _body_media_type(handler)
    if expected is None:
        return
    sent = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if sent != expected:
        raise UnsupportedMediaType(f"send the body as {expected} (got {sent or 'no Content-Type'})")
