"""The ``flood`` scenario: one client floods the service; another client's on-screen image is timed.

The probe client (API key ``probe``) first sends single on-screen images (priority 1, new each
time) to the idle service, one after the other, for its unloaded latency. Then the flood client
(API key ``flood``) sends requests of new images at the most urgent priority from many
concurrent loops, and hangs up on every other request after ``ABANDON_AFTER_S`` (a reader who
scrolled on or closed the page); meanwhile the probe keeps sending single on-screen images.
Reported: the probe's latency unloaded and under the flood (the target is at most 2x), the
flood's requests answered, refused with 503 and abandoned, the work the service dropped for
clients that had gone, and the server's memory.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

import httpx
import numpy as np

from tests.load.client import sample_rss
from tests.load.scenarios import VISIBLE, Traffic
from tests.load.stack import tree_rss_mb

FLOOD_KEY, PROBE_KEY = "flood", "probe"
ABANDON_AFTER_S = 1.0
PROBE_GAP_S = 0.5
WARMUP_PROBES, UNLOADED_PROBES = 2, 5
SETTLE_S = 2.0
"""How long the flood runs before the probe starts measuring it."""
_LABELLED = re.compile(r'^genspot_abandoned_total\{work="(?P<work>\w+)"\} (?P<value>\S+)$', re.MULTILINE)


async def _probe(client: httpx.AsyncClient, traffic: Traffic) -> float | None:
    """Seconds until one new on-screen image is answered ``ok``; None if it was not."""
    started = time.perf_counter()
    response = await client.post("/v1/detect", json={"items": [traffic.item(traffic.fresh_key(), VISIBLE)]})
    elapsed = time.perf_counter() - started
    ok = response.status_code == 200 and response.json()["results"][0]["status"] == "ok"
    return elapsed if ok else None


async def _flood_request(client: httpx.AsyncClient, traffic: Traffic, items: int, abandon: bool) -> str:
    body = {"items": [traffic.item(traffic.fresh_key(), 0) for _ in range(items)]}
    timeout = httpx.Timeout(client.timeout.read, read=ABANDON_AFTER_S) if abandon else client.timeout
    try:
        response = await client.post("/v1/detect", json=body, timeout=timeout)
    except httpx.ReadTimeout:
        return "abandoned" if abandon else "timeout"
    except httpx.HTTPError as exc:
        return f"transport:{type(exc).__name__}"
    return "answered" if response.status_code == 200 else f"http:{response.status_code}"


async def _abandoned_work(client: httpx.AsyncClient) -> Counter:
    response = await client.get("/metrics")
    response.raise_for_status()
    return Counter({m["work"]: float(m["value"]) for m in _LABELLED.finditer(response.text)})


async def run_flood(
    flood: httpx.AsyncClient, probe: httpx.AsyncClient, traffic: Traffic, *, clients: int, items: int, seconds: float,
    server_pid: int | None,
) -> dict:
    """The flood scenario's figures (see the module docstring)."""
    for _ in range(WARMUP_PROBES):
        await _probe(probe, traffic)
    unloaded = [await _probe(probe, traffic) for _ in range(UNLOADED_PROBES)]
    dropped_before = await _abandoned_work(probe)
    rss: list[float] = []
    sampler = asyncio.create_task(sample_rss(server_pid, rss))
    outcomes: Counter = Counter()
    deadline = time.monotonic() + seconds
    sent = 0

    async def flood_loop() -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            sent += 1
            outcomes[await _flood_request(flood, traffic, items, abandon=sent % 2 == 0)] += 1

    async def probe_loop() -> list[float | None]:
        await asyncio.sleep(SETTLE_S)
        latencies = []
        while time.monotonic() < deadline:
            latencies.append(await _probe(probe, traffic))
            await asyncio.sleep(PROBE_GAP_S)
        return latencies

    started = time.perf_counter()
    try:
        *_, loaded = await asyncio.gather(*(flood_loop() for _ in range(clients)), probe_loop())
    finally:
        sampler.cancel()
    wall_s = time.perf_counter() - started
    await asyncio.sleep(ABANDON_AFTER_S)  # the last abandoned requests' work is dropped by now
    dropped = await _abandoned_work(probe) - dropped_before
    if server_pid is not None:
        rss.append(tree_rss_mb(server_pid))
    return _summary(unloaded, loaded, outcomes, dropped, rss, clients, items, wall_s)


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else 0.0


def _summary(unloaded, loaded, outcomes: Counter, dropped: Counter, rss: list[float], clients: int, items: int, wall_s: float) -> dict:
    unloaded_ok = [s for s in unloaded if s is not None]
    loaded_ok = [s for s in loaded if s is not None]
    base = _ms(unloaded_ok, 50)
    rss = rss or [0.0]
    return {
        "scenario": "flood",
        "flood_clients": clients,
        "flood_items_per_request": items,
        "wall_s": round(wall_s, 2),
        "flood_requests": dict(outcomes),
        "abandoned_items_sent": outcomes["abandoned"] * items,
        "work_dropped": {work: int(count) for work, count in dropped.items() if count},
        "probe_unloaded_ms": {"p50": base, "n": len(unloaded_ok), "failed": len(unloaded) - len(unloaded_ok)},
        "probe_loaded_ms": {"p50": _ms(loaded_ok, 50), "p95": _ms(loaded_ok, 95), "n": len(loaded_ok), "failed": len(loaded) - len(loaded_ok)},
        "probe_ratio": round(_ms(loaded_ok, 50) / base, 2) if base and loaded_ok else None,
        "rss_mb": {"start": round(rss[0], 1), "peak": round(max(rss), 1), "end": round(rss[-1], 1)},
    }


FLOOD_COLUMNS = (
    "flood clients x items", "wall s", "flood requests", "items in abandoned requests", "work cancelled for nobody",
    "probe unloaded p50 ms", "probe under flood p50 / p95 ms", "ratio (target <= 2)", "RSS MiB start/peak/end",
)


def flood_markdown(row: dict) -> str:
    requests = ", ".join(f"{kind}: {count}" for kind, count in sorted(row["flood_requests"].items()))
    dropped = ", ".join(f"{work}: {count}" for work, count in sorted(row["work_dropped"].items())) or "0"
    loaded, rss = row["probe_loaded_ms"], row["rss_mb"]
    cells = (
        f"{row['flood_clients']} x {row['flood_items_per_request']}", row["wall_s"], requests, row["abandoned_items_sent"], dropped,
        row["probe_unloaded_ms"]["p50"], f"{loaded['p50']} / {loaded['p95']} (n={loaded['n']})", row["probe_ratio"],
        f"{rss['start']:.0f} / {rss['peak']:.0f} / {rss['end']:.0f}",
    )
    return "\n".join(["| " + " | ".join(FLOOD_COLUMNS) + " |", "|" + "---|" * len(FLOOD_COLUMNS), "| " + " | ".join(map(str, cells)) + " |"])
