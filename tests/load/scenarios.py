"""The traffic shapes: cached items only, uncached (model-bound) items, and page-like bursts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tests.load.client import Unit
from tests.load.images import ImageServer


@dataclass(frozen=True)
class Scenario:
    """``clients`` loops, each sending units of ``items`` items split into requests of at most
    ``per_request`` (all sent at once, as the extension sends a page's images)."""

    name: str
    clients: int
    items: int
    per_request: int
    cached: bool = False
    max_units: int = 200
    max_seconds: float = 60.0


class Traffic:
    """Makes request bodies: fresh image keys for uncached items, a warmed pool for cached ones."""

    def __init__(self, images: ImageServer, pool_size: int, seed: int = 0):
        self.images = images
        self._rng = random.Random(seed)
        # Start fresh keys at a random offset so reruns against one long-lived server stay uncached.
        self._next_fresh = self._rng.randrange(10**9)
        self.pool = [self.fresh_key() for _ in range(pool_size)]

    def fresh_key(self) -> int:
        self._next_fresh += 1
        return self._next_fresh

    def item(self, key: int) -> dict:
        return {"id": str(key), "url": self.images.url(key), "alt_text": self.images.caption(key)}

    def body(self, keys: list[int]) -> dict:
        return {"items": [self.item(key) for key in keys]}

    def warmup_units(self, chunk: int = 32) -> list[Unit]:
        """Requests that put every pool item in the cache (sent before the cached scenario)."""
        return [[self.body(self.pool[i : i + chunk])] for i in range(0, len(self.pool), chunk)]

    def unit_factory(self, scenario: Scenario) -> Callable[[int], Unit]:
        def make(_: int) -> Unit:
            keys = self._keys(scenario)
            return [self.body(keys[i : i + scenario.per_request]) for i in range(0, len(keys), scenario.per_request)]

        return make

    def _keys(self, scenario: Scenario) -> list[int]:
        if scenario.cached:
            return self._rng.sample(self.pool, min(scenario.items, len(self.pool)))
        return [self.fresh_key() for _ in range(scenario.items)]
