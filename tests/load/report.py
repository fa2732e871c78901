"""Turn measured runs into the figures of docs/RELIABILITY.md (a Markdown table and JSON)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from tests.load.client import Run
from tests.load.scenarios import Scenario

COLUMNS = (
    "scenario", "clients", "items/req", "units", "requests", "items", "wall s", "req/s", "items/s",
    "p50 ms", "p95 ms", "p99 ms", "errors", "cached items", "image fetches", "RSS MiB start/peak/end",
    "model calls", "mean batch", "model busy", "page faults/item",
)
BADGE_COLUMNS = (
    "scenario", "pages", "images", "on screen", "sent", "first badge ms", "last on-screen badge ms", "last badge ms",
    "pages with every on-screen badge first",
)


SERVER_SERIES = ("genspot_batch_size_sum", "genspot_batch_size_count", "genspot_model_latency_seconds_sum")
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*) (?P<value>\S+)$", re.MULTILINE)


def server_series(exposition: str) -> dict[str, float]:
    """The unlabelled samples of ``SERVER_SERIES`` from a Prometheus scrape (0 where absent)."""
    found = {m["name"]: float(m["value"]) for m in _SAMPLE.finditer(exposition)}
    return {name: found.get(name, 0.0) for name in SERVER_SERIES}


def server_side(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict:
    """Mean batch size and the share of the wall time the model thread was busy, over one scenario."""
    batches = after["genspot_batch_size_count"] - before["genspot_batch_size_count"]
    items = after["genspot_batch_size_sum"] - before["genspot_batch_size_sum"]
    model_s = after["genspot_model_latency_seconds_sum"] - before["genspot_model_latency_seconds_sum"]
    return {
        "model_calls": int(batches),
        "mean_batch": round(items / batches, 1) if batches else 0.0,
        "model_busy": round(model_s / max(wall_s, 1e-9), 2),
    }


def badge_times(scenario: Scenario, run: Run) -> dict:
    """For page units: medians over the pages of the time to the first badge, to the last badge
    of an image on screen and to the last badge (an image's badge appears with its request's
    answer), and on how many pages every on-screen badge came before every other badge."""
    shown = scenario.on_screen()
    requests = scenario.requests(scenario.items)
    first, last_shown, last, shown_first = [], [], [], 0
    for outcome in run.outcomes:
        shown_at = [at for at, positions in zip(outcome.answered_s, requests) if any(p in shown for p in positions)]
        others_at = [at for at, positions in zip(outcome.answered_s, requests) if any(p not in shown for p in positions)]
        first.append(min(outcome.answered_s))
        last_shown.append(max(shown_at))
        last.append(max(outcome.answered_s))
        shown_first += max(shown_at) < min(others_at)
    return {
        "on_screen": f"{shown.start + 1}-{shown.stop}",
        "first_badge_ms": _median_ms(first),
        "last_on_screen_badge_ms": _median_ms(last_shown),
        "last_badge_ms": _median_ms(last),
        "pages_on_screen_first": shown_first,
    }


def _median_ms(seconds: list[float]) -> float:
    return round(float(np.median(seconds)) * 1000, 1) if seconds else 0.0


def summarize(scenario: Scenario, run: Run, image_fetches: int, server: dict | None = None) -> dict:
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
        "items_per_unit": scenario.items,
        "max_items_per_request": scenario.per_request,
        "prioritized": scenario.prioritized,
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
        "server": server or {},
        **({"badges": badge_times(scenario, run)} if scenario.page else {}),
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        latency, rss = row["latency_ms"], row["rss_mb"]
        errors = sum(row["errors"].values())
        error_text = f"{errors} ({', '.join(f'{k}: {v}' for k, v in row['errors'].items())})" if errors else "0"
        per_request = row["max_items_per_request"]
        items_per_req = str(per_request) if per_request >= row["items_per_unit"] else f"{row['items_per_unit']} in <={per_request}"
        cells = (
            row["scenario"], row["clients"], items_per_req, row["units"], row["requests"], row["items"],
            row["wall_s"], row["requests_per_s"], row["items_per_s"], latency["p50"], latency["p95"],
            latency["p99"], error_text, row["cached_items"], row["image_fetches"],
            f"{rss['start']:.0f} / {rss['peak']:.0f} / {rss['end']:.0f}",
            *(row["server"].get(key, "") for key in ("model_calls", "mean_batch", "model_busy", "page_faults_per_item")),
        )
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def badge_markdown(rows: list[dict]) -> str:
    """The page scenarios' badge times (rows without ``badges`` are left out)."""
    lines = ["| " + " | ".join(BADGE_COLUMNS) + " |", "|" + "---|" * len(BADGE_COLUMNS)]
    for row in rows:
        if "badges" in row:
            badges = row["badges"]
            sent = "on screen first, priorities" if row["prioritized"] else "page order"
            cells = (
                row["scenario"], row["units"], row["items_per_unit"], badges["on_screen"], sent, badges["first_badge_ms"],
                badges["last_on_screen_badge_ms"], badges["last_badge_ms"], f"{badges['pages_on_screen_first']} of {row['units']}",
            )
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)
