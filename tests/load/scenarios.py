"""The traffic shapes: cached items only, uncached (model-bound) items, and page-like bursts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tests.load.client import Unit
from tests.load.images import ImageServer

# The extension's priorities (extension/shared/messages.js PRIORITY): images on screen, images near it.
VISIBLE, NEARBY = 1, 4


@dataclass(frozen=True)
class Scenario:
    """``clients`` loops, each sending units of ``items`` items split into requests of at most
    ``per_request`` (all sent at once, as the extension sends a page's images).

    ``page``: a unit is a page scrolled to its middle, with the middle fifth of its images on
    screen (:meth:`on_screen`) and the rest in the extension's lookahead. ``prioritized``: sent
    as the extension sends it now, the images on screen first, in requests of their own, with
    priority ``VISIBLE`` (the others ``NEARBY``); else in page order without priorities, as it
    did before."""

    name: str
    clients: int
    items: int
    per_request: int
    cached: bool = False
    max_units: int = 200
    max_seconds: float = 60.0
    page: bool = False
    prioritized: bool = False

    def on_screen(self) -> range:
        """Positions (in page order) of the images on screen; empty unless ``page``."""
        return range(self.items * 2 // 5, self.items * 3 // 5) if self.page else range(0)

    def requests(self, count: int) -> list[list[int]]:
        """The positions (of ``count`` items in page order) each request of a unit holds, in the order they are sent."""
        positions = list(range(count))
        groups = [positions]
        if self.prioritized:
            shown = self.on_screen()
            groups = [list(shown), [p for p in positions if p not in shown]]
        return [group[i : i + self.per_request] for group in groups for i in range(0, len(group), self.per_request)]

    def priority(self, position: int) -> int | None:
        if not self.prioritized:
            return None
        return VISIBLE if position in self.on_screen() else NEARBY


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

    def item(self, key: int, priority: int | None = None) -> dict:
        item = {"id": str(key), "url": self.images.url(key), "alt_text": self.images.caption(key)}
        return item if priority is None else {**item, "priority": priority}

    def body(self, keys: list[int]) -> dict:
        return {"items": [self.item(key) for key in keys]}

    def warmup_units(self, chunk: int = 32) -> list[Unit]:
        """Requests that put every pool item in the cache (sent before the cached scenario)."""
        return [[self.body(self.pool[i : i + chunk])] for i in range(0, len(self.pool), chunk)]

    def unit_factory(self, scenario: Scenario) -> Callable[[int], Unit]:
        def make(_: int) -> Unit:
            keys = self._keys(scenario)
            return [{"items": [self.item(keys[p], scenario.priority(p)) for p in request]} for request in scenario.requests(len(keys))]

        return make

    def _keys(self, scenario: Scenario) -> list[int]:
        if scenario.cached:
            return self._rng.sample(self.pool, min(scenario.items, len(self.pool)))
        return [self.fresh_key() for _ in range(scenario.items)]
