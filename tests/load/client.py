"""The async load driver: many clients, bounded by a request count and a wall-clock limit.

A *unit* is what one client waits for: one request, or (for a page-like burst) several
requests sent at once, whose latency is the time until the last one answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from tests.load.stack import tree_rss_mb

Unit = Sequence[dict]
"""The request bodies one client sends at once."""


@dataclass
class Outcome:
    """One unit: ``latency_s`` until its last answer; ``answered_s``: when each of its requests
    was answered, seconds after the unit started (in the unit's order)."""

    latency_s: float
    requests: int
    items: int
    ok_items: int
    cached_items: int
    errors: Counter
    answered_s: list[float] = field(default_factory=list)


@dataclass
class Run:
    """Everything measured for one scenario."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    rss_mb: list[float] = field(default_factory=list)


async def _send(client: httpx.AsyncClient, body: dict) -> tuple[int, int, int, Counter]:
    """One POST /v1/detect -> (items, ok items, cached items, error codes)."""
    items = len(body["items"])
    try:
        response = await client.post("/v1/detect", json=body)
    except httpx.HTTPError as exc:
        return items, 0, 0, Counter({f"transport:{type(exc).__name__}": items})
    if response.status_code != 200:
        return items, 0, 0, Counter({f"http:{response.status_code}": items})
    results = response.json()["results"]
    ok = [r for r in results if r["status"] == "ok"]
    errors = Counter(r["error"]["code"] for r in results if r["status"] != "ok")
    return items, len(ok), sum(bool(r.get("cached")) for r in ok), errors


async def _unit(client: httpx.AsyncClient, unit: Unit) -> Outcome:
    start = time.perf_counter()

    async def answered(body: dict) -> tuple[float, tuple[int, int, int, Counter]]:
        answer = await _send(client, body)
        return time.perf_counter() - start, answer

    timed = await asyncio.gather(*(answered(body) for body in unit))
    latency = time.perf_counter() - start
    answers = [answer for _, answer in timed]
    errors = Counter()
    for *_, codes in answers:
        errors.update(codes)
    return Outcome(
        latency, len(unit), sum(a[0] for a in answers), sum(a[1] for a in answers), sum(a[2] for a in answers), errors,
        [at for at, _ in timed],
    )


async def sample_rss(pid: int | None, samples: list[float], every_s: float = 0.25) -> None:
    while pid is not None:
        samples.append(tree_rss_mb(pid))
        await asyncio.sleep(every_s)


async def drive(
    client: httpx.AsyncClient,
    make_unit: Callable[[int], Unit],
    *,
    clients: int,
    max_units: int,
    max_seconds: float,
    server_pid: int | None = None,
) -> Run:
    """Run ``clients`` concurrent loops sending ``make_unit(i)`` until ``max_units`` or ``max_seconds``."""
    run = Run()
    next_index = 0
    deadline = time.monotonic() + max_seconds

    async def client_loop() -> None:
        nonlocal next_index
        while next_index < max_units and time.monotonic() < deadline:
            index, next_index = next_index, next_index + 1
            run.outcomes.append(await _unit(client, make_unit(index)))

    sampler = asyncio.create_task(sample_rss(server_pid, run.rss_mb))
    start = time.perf_counter()
    try:
        await asyncio.gather(*(client_loop() for _ in range(clients)))
    finally:
        run.wall_s = time.perf_counter() - start
        sampler.cancel()
    if server_pid is not None:
        run.rss_mb.append(tree_rss_mb(server_pid))
    return run
