"""Who may call the detection API, and how often: API keys and rate limits, as a route guard."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers import BaseRouteHandler

API_KEY_HEADER = "X-API-Key"


def client_address(connection: ASGIConnection, trust_forwarded_for: bool) -> str:
    """The caller's address; behind a trusted load balancer, the first ``X-Forwarded-For`` entry."""
    if trust_forwarded_for:
        forwarded = connection.headers.get("x-forwarded-for", "")
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first
    return connection.client.host if connection.client else "unknown"


def _known_key(key: str, keys: tuple[str, ...]) -> bool:
    # compare with every key, in constant time per key, so timing reveals nothing about them
    matches = [hmac.compare_digest(key.encode(), known.encode()) for known in keys]
    return any(matches)


async def access_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """401 without a valid key when keys are configured; 429 over the per-client or per-key limit."""
    runtime = connection.app.state.runtime
    settings = runtime.settings
    key = connection.headers.get(API_KEY_HEADER.lower())
    valid_key = bool(key) and _known_key(key, settings.api_keys)
    if settings.api_keys and not valid_key:
        raise NotAuthorizedException(f"missing or unknown API key (send it in the {API_KEY_HEADER} header)")
    retry_after = await runtime.client_limiter.check("client", client_address(connection, settings.trust_forwarded_for))
    if retry_after is None and valid_key:
        retry_after = await runtime.key_limiter.check("key", key)
    if retry_after is not None:
        raise TooManyRequestsException(
            f"rate limit exceeded; retry in {int(retry_after)} s", headers={"Retry-After": str(int(retry_after))}
        )
