"""Who may call the detection API, and how often: API keys and rate limits, as route guards.

With API keys configured, every wrong or missing key counts against the caller's address; past
``auth_failures_per_client`` failures in a window, that address gets 429 for the rest of the
window, whatever key it sends (a right guess must look like a wrong one). ``/schema`` needs a key
too unless ``open_schema`` says otherwise; health, readiness and metrics stay open.
"""

from __future__ import annotations

import hashlib
import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers import BaseRouteHandler

API_KEY_HEADER = "X-API-Key"
SCHEMA_PATH = "/schema"


def client_address(connection: ASGIConnection, trust_forwarded_for: bool) -> str:
    """The caller's address; behind a trusted load balancer, the first ``X-Forwarded-For`` entry."""
    if trust_forwarded_for:
        forwarded = connection.headers.get("x-forwarded-for", "")
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first
    return connection.client.host if connection.client else "unknown"


def client_identity(connection: ASGIConnection) -> str:
    """Whose work a request is, for fair shares and queue bounds: its API key where keys are
    configured (a made-up key is refused before this matters), else its address."""
    settings = connection.app.state.resources.settings
    key = connection.headers.get(API_KEY_HEADER.lower())
    if settings.api_keys and key and _known_key(key, settings.api_keys):
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "address:" + client_address(connection, settings.trust_forwarded_for)


def _known_key(key: str, keys: tuple[str, ...]) -> bool:
    # compare with every key, in constant time per key, so timing reveals nothing about them
    matches = [hmac.compare_digest(key.encode(), known.encode()) for known in keys]
    return any(matches)


def _too_many(retry_after: float) -> TooManyRequestsException:
    return TooManyRequestsException(
        f"rate limit exceeded; retry in {int(retry_after)} s", headers={"Retry-After": str(int(retry_after))}
    )


async def _authenticate(connection: ASGIConnection) -> str | None:
    """The caller's valid key (None when no keys are configured); 401 or 429 otherwise."""
    resources = connection.app.state.resources
    settings = resources.settings
    if not settings.api_keys:
        return None
    address = client_address(connection, settings.trust_forwarded_for)
    if (retry_after := await resources.auth_failure_limiter.exceeded("auth", address)) is not None:
        raise _too_many(retry_after)
    key = connection.headers.get(API_KEY_HEADER.lower())
    if key and _known_key(key, settings.api_keys):
        return key
    if (retry_after := await resources.auth_failure_limiter.check("auth", address)) is not None:
        raise _too_many(retry_after)
    raise NotAuthorizedException(f"missing or unknown API key (send it in the {API_KEY_HEADER} header)")


async def access_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """401 without a valid key when keys are configured; 429 over the per-client or per-key limit."""
    resources = connection.app.state.resources
    key = await _authenticate(connection)
    retry_after = await resources.client_limiter.check("client", client_address(connection, resources.settings.trust_forwarded_for))
    if retry_after is None and key is not None:
        retry_after = await resources.key_limiter.check("key", key)
    if retry_after is not None:
        raise _too_many(retry_after)


async def schema_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """An app-wide guard: the OpenAPI routes need a valid key unless the schema is open."""
    path = connection.scope["path"]
    if (path == SCHEMA_PATH or path.startswith(SCHEMA_PATH + "/")) and not connection.app.state.resources.settings.schema_is_open:
        await _authenticate(connection)
