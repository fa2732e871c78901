"""``python -m tests.load.run``: load-test a real `genspot serve` with real Redis, on loopback.

By default it starts everything itself (redis-server, an image server, `genspot serve`),
then runs the scenarios in order and prints one Markdown table row each:

- ``cached``: items drawn from a pool already in the cache (no download, no model);
- ``uncached``: every item a new image (download, decode, model);
- ``burst``: one client sends a page of 50 new images at once, split as the extension splits
  it (requests of at most 16 items, all sent together), page after page;
- ``page``: the same pages as the extension sends them now: the images on screen (the middle
  fifth) first, in requests of their own, with priorities. For both, a second table gives the
  time to the first badge, to the last badge on screen and to the last badge;
- ``flood`` (only when asked for): one client floods (``--clients`` loops of ``--items`` new
  images, hanging up on every other request) while another client's single on-screen images are
  timed against their latency on the idle service (``tests/load/flood.py``); its own table.

Each scenario stops at ``--units`` or ``--seconds``, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.load.client import drive
from tests.load.flood import FLOOD_KEY, PROBE_KEY, flood_markdown, run_flood
from tests.load.images import ImageServer, load_pictures
from tests.load.report import badge_markdown, markdown, server_series, server_side, summarize
from tests.load.scenarios import Scenario, Traffic
from tests.load.stack import RedisProcess, ServeProcess, tree_minor_faults

SCENARIOS = ("cached", "uncached", "burst", "page", "flood")
DEFAULT_SCENARIOS = ("cached", "uncached", "burst", "page")
LOAD_KEY = "load"
"""The API key of the other scenarios' clients (the started server knows it, with the flood's two)."""
REQUEST_TIMEOUT_S = 120.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load.run", description=__doc__.split("\n\n")[0])
    target = parser.add_argument_group("target")
    target.add_argument("--bundle", type=Path, action="append",
                        help="bundle to serve (starts `genspot serve` with it); repeat it to measure several bundles in one "
                             "run, each with a server and redis-server of its own, one after the other")
    target.add_argument("--url", help="load an already running loopback server instead (it must allow loopback fetches from --image-port)")
    target.add_argument("--no-redis", action="store_true", help="serve with the in-process cache instead of a redis-server")
    target.add_argument("--workers", type=int, default=1, help="GENSPOT_WORKERS for the started server (default 1)")
    target.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra GENSPOT_* setting for the started server (repeatable)")
    target.add_argument("--server-log", type=Path, help="write the started server's output here")
    traffic = parser.add_argument_group("traffic")
    traffic.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma-separated, from {', '.join(SCENARIOS)}")
    traffic.add_argument("--clients", type=int, default=16, help="concurrent clients for cached/uncached (default 16)")
    traffic.add_argument("--items", type=int, default=8, help="items per request for cached/uncached (default 8)")
    traffic.add_argument("--units", type=int, default=300, help="max requests (pages for burst) per scenario (default 300)")
    traffic.add_argument("--seconds", type=float, default=60.0, help="max seconds per scenario (default 60)")
    traffic.add_argument("--pool", type=int, default=128, help="distinct images in the cached pool (default 128)")
    traffic.add_argument("--burst-items", type=int, default=50, help="images per page in burst and page (default 50)")
    traffic.add_argument("--burst-max-items", type=int, default=16, help="most items per request of a page, like the extension (default 16)")
    traffic.add_argument("--images", type=Path, help="serve these images (default: the shared dev set, else synthetic)")
    traffic.add_argument("--image-port", type=int, default=0, help="image server port (default: a free one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if (args.bundle is None) == (args.url is None):
        parser.error("give exactly one of --bundle (start a server) or --url (use a running one)")
    if args.url and not _is_loopback(args.url):
        parser.error(f"--url must point at a loopback address (this tool never leaves the machine): {args.url}")
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    return args


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    known = {
        "cached": Scenario("cached", args.clients, args.items, args.items, cached=True, max_units=args.units, max_seconds=args.seconds),
        "uncached": Scenario("uncached", args.clients, args.items, args.items, max_units=args.units, max_seconds=args.seconds),
        "burst": Scenario("burst", 1, args.burst_items, args.burst_max_items, max_units=args.units, max_seconds=args.seconds, page=True),
        "page": Scenario(
            "page", 1, args.burst_items, args.burst_max_items, max_units=args.units, max_seconds=args.seconds, page=True, prioritized=True
        ),
    }
    return [known[name] for name in args.scenarios.split(",") if name in known]


def server_env(args: argparse.Namespace, image_port: int, redis_url: str | None) -> dict[str, str]:
    """Settings for the started server: loopback images allowed, limits out of the way of the load."""
    env = {
        "GENSPOT_ALLOW_LOOPBACK": "true",
        "GENSPOT_ALLOWED_PORTS": str(image_port),
        "GENSPOT_WORKERS": str(args.workers),
        "GENSPOT_RATE_LIMIT_PER_CLIENT": str(10**9),
        "GENSPOT_RATE_LIMIT_PER_KEY": str(10**9),
        "GENSPOT_API_KEYS": ",".join((LOAD_KEY, FLOOD_KEY, PROBE_KEY)),  # the flood's clients are told apart by key
        "GENSPOT_LOG_LEVEL": "warning",
        "GENSPOT_REDIS_URL": redis_url or "",
    }
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    return env


def conditions(args: argparse.Namespace) -> dict:
    return {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": platform.processor() or platform.machine(),
        "bundles": [str(bundle) for bundle in args.bundle] if args.bundle else [args.url],
        "redis": not args.no_redis,
        "workers": args.workers,
        "env": args.env,
    }


async def measure(args: argparse.Namespace, base_url: str, images: ImageServer, server_pid: int | None) -> list[dict]:
    traffic = Traffic(images, args.pool)
    rows = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)

    def client_for(key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits, headers={"X-API-Key": key})

    async with client_for(LOAD_KEY) as client:
        for scenario in scenarios(args):
            if scenario.cached:
                warm = traffic.warmup_units()
                await drive(client, lambda i: warm[i], clients=4, max_units=len(warm), max_seconds=600)
            fetched_before, series_before = images.requests, await _scrape(client)
            faults_before = tree_minor_faults(server_pid) if server_pid else None
            run = await drive(
                client, traffic.unit_factory(scenario), clients=scenario.clients,
                max_units=scenario.max_units, max_seconds=scenario.max_seconds, server_pid=server_pid,
            )
            server = server_side(series_before, await _scrape(client), run.wall_s)
            if faults_before is not None:
                items = sum(outcome.items for outcome in run.outcomes)
                server["page_faults_per_item"] = round((tree_minor_faults(server_pid) - faults_before) / max(items, 1))
            rows.append(summarize(scenario, run, images.requests - fetched_before, server))
            print(markdown(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    if "flood" in args.scenarios.split(","):
        async with client_for(FLOOD_KEY) as flood, client_for(PROBE_KEY) as probe:
            rows.append(await run_flood(
                flood, probe, traffic, clients=args.clients, items=args.items, seconds=args.seconds, server_pid=server_pid
            ))
    return rows


async def _scrape(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    response.raise_for_status()
    return server_series(response.text)


def measure_target(args: argparse.Namespace, bundle: Path | None, pictures) -> list[dict]:
    """The scenarios against one server: started with ``bundle`` (with its own redis-server), or ``--url``."""
    with ExitStack() as stack:
        images = stack.enter_context(ImageServer(pictures, port=args.image_port))
        if bundle is None:
            base_url, server_pid = args.url.rstrip("/"), None
        else:
            redis = None if args.no_redis else stack.enter_context(RedisProcess())
            env = server_env(args, images.port, redis.url if redis else None)
            print(f"starting genspot serve (bundle {bundle}) ...", file=sys.stderr, flush=True)
            server = stack.enter_context(ServeProcess(bundle, env, log_path=args.server_log))
            base_url, server_pid = server.url, server.process.pid
        return asyncio.run(measure(args, base_url, images, server_pid))


def print_tables(rows: list[dict]) -> None:
    measured = [row for row in rows if row["scenario"] != "flood"]
    if measured:
        print(markdown(measured))
    if any("badges" in row for row in measured):
        print("\n" + badge_markdown(measured))
    for row in rows:
        if row["scenario"] == "flood":
            print("\n" + flood_markdown(row))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    pictures = load_pictures(args.images)
    targets = args.bundle or [None]
    results = []
    for bundle in targets:
        rows = measure_target(args, bundle, pictures)
        results.append({"target": str(bundle or args.url), "results": rows})
        if len(targets) > 1:
            print(f"\n### bundle {bundle}\n")
        print_tables(rows)
    result = {"conditions": conditions(args), "targets": results}
    print(f"\nconditions: {json.dumps(result['conditions'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
