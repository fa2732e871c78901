"""Prometheus metrics of one service instance, on its own registry (several apps may share a process in tests).

With ``--workers N`` each worker process writes to ``PROMETHEUS_MULTIPROC_DIR`` (set by
``genspot serve``) and ``/metrics`` sums all workers, so a scrape sees the whole server.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every counter and histogram the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter("genspot_requests", "HTTP requests by route and status code", ["route", "status"], registry=registry)
        self.request_latency = Histogram(
            "genspot_request_latency_seconds", "HTTP request latency by route", ["route"], buckets=LATENCY_BUCKETS, registry=registry
        )
        self.items = Counter("genspot_items", "Detection items by input kind and outcome", ["input", "status"], registry=registry)
        self.item_errors = Counter("genspot_item_errors", "Items answered with an error, by code", ["code"], registry=registry)
        self.fetch_errors = Counter("genspot_fetch_errors", "Image downloads that failed, by code", ["code"], registry=registry)
        self.cache = Counter(
            "genspot_cache", "Cache lookups by entry kind (result, url) and outcome (hit, miss)", ["entry", "outcome"], registry=registry
        )
        self.provenance = Counter("genspot_provenance", "Metadata verdicts read from images", ["verdict"], registry=registry)
        self.batch_size = Histogram("genspot_batch_size", "Items per model call", buckets=BATCH_BUCKETS, registry=registry)
        self.model_latency = Histogram(
            "genspot_model_latency_seconds", "Seconds per model call (one batch)", buckets=LATENCY_BUCKETS, registry=registry
        )
        self.model_errors = Counter("genspot_model_errors", "Model calls that raised", registry=registry)
        self.abandoned = Counter(
            "genspot_abandoned", "Work cancelled unfinished because every requester had gone: fetch or compute", ["work"],
            registry=registry,
        )
        self.disconnected = Counter("genspot_disconnected", "Requests whose client left before the answer", registry=registry)
        self.overloaded = Counter("genspot_overloaded", "Requests refused with 503: the work queue was full", registry=registry)

    def exposition(self) -> bytes:
        """The text a Prometheus scrape gets: all workers' values when running multi-process."""
        multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiproc_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=multiproc_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)
