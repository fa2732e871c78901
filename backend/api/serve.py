"""``genspot serve``: run the detection service with uvicorn.

Options override ``GENSPOT_*`` environment variables, which override defaults. The merged
settings travel to uvicorn's worker processes as environment variables, so ``--workers N``
runs N identical processes, each with its own model copy and micro-batcher.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from urllib.parse import urlsplit

from genspot.backend.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genspot serve",
        description="Run the detection service. Every setting can also be given as a GENSPOT_* environment variable (docs/backend.md).",
    )
    parser.add_argument("--bundle", help="bundle directory (default bundles/default; GENSPOT_BUNDLE)")
    parser.add_argument("--device", help="torch device for the model: cpu, cuda, cuda:1 (GENSPOT_DEVICE)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default 1); each loads the model")
    parser.add_argument("--redis-url", help="shared Redis cache, e.g. redis://host:6379/0 (default: in-process cache)")
    parser.add_argument("--api-key", action="append", dest="api_keys", help="accepted X-API-Key value (repeatable; none = open)")
    parser.add_argument("--cors-origin", action="append", dest="cors_origins", help="allowed browser origin (repeatable)")
    parser.add_argument("--allow-loopback", action="store_true", default=None, help="let URLs point at 127.0.0.1 (tests only)")
    parser.add_argument("--ignore-alt-text", action="store_false", default=None, dest="use_alt_text",
                        help="judge every image without its alt-text (GENSPOT_USE_ALT_TEXT=false)")
    parser.add_argument("--trust-alt-text", action="store_true", default=None, dest="use_alt_text",
                        help="send alt-texts even to a bundle whose p_ai reads them (manifest alt_text 'full'); "
                        "default: only where the manifest says alt-text cannot move p_ai")
    parser.add_argument("--batch-max-size", type=int, help="most items per model call (default 32)")
    parser.add_argument("--batch-max-wait-ms", type=float, help="longest wait for a batch to fill (default 5)")
    parser.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"], help="default info")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {key: value for key, value in vars(args).items() if value is not None}
    for key in ("api_keys", "cors_origins"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    return Settings.from_env(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Before torch loads (genspot.bundle imports it): OpenMP threads that spin between operations
    # steal the cores the decode threads and the event loop need, and stall when those run; passive
    # waiting gave up to 3x the service throughput of cheap models and stable benchmarks here
    # (docs/RELIABILITY.md). uvicorn's worker processes inherit it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from genspot.bundle import BundleError, read_manifest

    try:
        settings = settings_from_args(args)
        manifest = read_manifest(settings.bundle)  # fail here, in one line, before any worker starts
    except (SettingsError, BundleError) as exc:
        print(f"genspot serve: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.update(settings.to_env())
    metrics_dir = None
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="genspot-metrics-")  # workers' metrics, summed by /metrics
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    cache = _without_password(settings.redis_url) if settings.redis_url else "in-process"
    print(
        f"genspot serve: model {manifest['model_version']} ({manifest['kind']}, {manifest['dtype']}) from {settings.bundle}, "
        f"cache {cache}, {settings.workers} worker(s) on http://{settings.host}:{settings.port}",
        file=sys.stderr,
    )
    try:
        _run_uvicorn(settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl() if parts.hostname else url


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    from genspot.backend.api.connections import PROTOCOL

    uvicorn.run(
        "genspot.backend.api.app:create_app_from_env",
        factory=True,
        http=PROTOCOL,  # uvicorn's h11 protocol with deadlines for request headers and bodies
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        timeout_worker_healthcheck=settings.worker_start_timeout_s,  # loading a model takes a while
        proxy_headers=False,  # X-Forwarded-For is read by genspot.backend.api.access, only when trusted
    )
