"""Fixtures for the fault and hostile-input drills: a misbehaving image host and an in-process app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from litestar import Litestar

from genspot.backend.settings import Settings
from tests.reliability.hostile import HostileServer

FETCH_TOTAL_S = 2.0
"""The whole-fetch budget the drills run with; every item must be answered within it plus a margin."""

UNLIMITED = 10**9


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def drill_settings(bundle, *ports: int, **overrides) -> Settings:
    """Loopback image hosts allowed, short fetch budget, rate limits out of the way of the drills."""
    values = dict(
        bundle=str(bundle),
        allow_loopback=True,
        allowed_ports=tuple(ports),
        fetch_connect_timeout_s=1.0,
        fetch_read_timeout_s=1.0,
        fetch_total_timeout_s=FETCH_TOTAL_S,
        fetch_max_bytes=2 * 1024 * 1024,
        batch_max_wait_ms=2.0,
        decode_threads=2,
        rate_limit_per_client=UNLIMITED,
        rate_limit_per_key=UNLIMITED,
    )
    return Settings(**{**values, **overrides})


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started, called in this event loop (so requests overlap for real)."""
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            yield client
