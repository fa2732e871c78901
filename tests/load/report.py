"""Turn measured runs into the figures of docs/RELIABILITY.md (a Markdown table and JSON)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tests.load.client import Run
from tests.load.scenarios import Scenario

COLUMNS = (
    "scenario", "clients", "items/req", "units", "requests", "items", "wall s", "req/s", "items/s",
    "p50 ms", "p95 ms", "p99 ms", "errors", "cached items", "image fetches", "RSS MiB start/peak/end",
)


def summarize(scenario: Scenario, run: Run, image_fetches: int) -> dict:
    latencies = np.array([o.latency_s for o in run.outcomes]) * 1000 if run.outcomes else np.zeros(1)
    errors = Counter()
    for outcome in run.outcomes:
        errors.update(outcome.errors)
    requests = sum(o.requests for o in run.outcomes)
    items = sum(o.items for o in run.outcomes)
    wall = max(run.wall_s, 1e-9)
    rss = run.rss_mb or [0.0]
    return {
        "scenario": scenario.name,
        "clients": scenario.clients,
        "items_per_request": scenario.items,
        "requests_per_unit": scenario.requests_per_unit,
        "units": len(run.outcomes),
        "requests": requests,
        "items": items,
        "ok_items": sum(o.ok_items for o in run.outcomes),
        "cached_items": sum(o.cached_items for o in run.outcomes),
        "wall_s": round(wall, 2),
        "requests_per_s": round(requests / wall, 2),
        "items_per_s": round(items / wall, 2),
        "latency_ms": {f"p{q}": round(float(np.percentile(latencies, q)), 1) for q in (50, 95, 99)},
        "errors": dict(errors),
        "image_fetches": image_fetches,
        "rss_mb": {"start": round(rss[0], 1), "peak": round(max(rss), 1), "end": round(rss[-1], 1)},
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        latency, rss = row["latency_ms"], row["rss_mb"]
        errors = sum(row["errors"].values())
        error_text = f"{errors} ({', '.join(f'{k}: {v}' for k, v in row['errors'].items())})" if errors else "0"
        items_per_req = f"{row['items_per_request']}" + (f" x{row['requests_per_unit']}" if row["requests_per_unit"] > 1 else "")
        cells = (
            row["scenario"], row["clients"], items_per_req, row["units"], row["requests"], row["items"],
            row["wall_s"], row["requests_per_s"], row["items_per_s"], latency["p50"], latency["p95"],
            latency["p99"], error_text, row["cached_items"], row["image_fetches"],
            f"{rss['start']:.0f} / {rss['peak']:.0f} / {rss['end']:.0f}",
        )
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)
