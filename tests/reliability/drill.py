"""What every fault drill shares: service settings and a small concurrent load whose clients loop
until told to stop, every answer recorded (the in-process app: ``tests.fixtures.service_app``).

Unlike tests/load (which measures), this only needs to keep requests in flight while a test
breaks something, and to say afterwards whether any of them failed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from genspot.backend.settings import Settings
from tests.fixtures.service_app import service_settings

FETCH_TOTAL_S = 2.0
"""The whole-fetch budget the drills run with; every item must be answered within it plus a margin."""


@dataclass
class Answer:
    started: float
    latency_s: float
    status: int | str  # HTTP status, or "ErrorType: message" of the transport error
    item_statuses: list[str] = field(default_factory=list)
    cached: list[bool] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status != 200 or any(status != "ok" for status in self.item_statuses)


@dataclass
class Drill:
    """``clients`` loops posting ``make_body(n)`` to ``/v1/detect`` until :meth:`stop`."""

    client: httpx.AsyncClient
    make_body: Callable[[int], dict]
    clients: int = 6
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self._counter = itertools.count()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            self.answers.append(await post(self.client, self.make_body(next(self._counter))))

    async def __aenter__(self) -> "Drill":
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.clients)]
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers to requests sent in [start, end) (``time.monotonic()`` values)."""
        return [a for a in self.answers if start <= a.started < end]


async def post(client: httpx.AsyncClient, body: dict) -> Answer:
    started = time.monotonic()
    try:
        response = await client.post("/v1/detect", json=body)
    except httpx.HTTPError as exc:
        return Answer(started, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
    latency = time.monotonic() - started
    if response.status_code != 200:
        return Answer(started, latency, response.status_code)
    results = response.json()["results"]
    return Answer(started, latency, 200, [r["status"] for r in results], [bool(r.get("cached")) for r in results])


def summary(answers: list[Answer]) -> str:
    failed = [a for a in answers if a.failed]
    worst = max((a.latency_s for a in answers), default=0.0)
    return f"{len(answers)} requests, {len(failed)} failed (first: {failed[:3]}), slowest {worst:.2f} s"


def drill_settings(bundle, *ports: int, **overrides) -> Settings:
    """Loopback image hosts allowed, short fetch budget, rate limits out of the way of the drills."""
    drill = dict(fetch_connect_timeout_s=1.0, fetch_read_timeout_s=1.0, fetch_total_timeout_s=FETCH_TOTAL_S, fetch_max_bytes=2 * 1024 * 1024)
    return service_settings(bundle, *ports, rate_limited=False, **(drill | overrides))
