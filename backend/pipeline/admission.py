"""Bounds on the work waiting for the decode threads and the model: past them, load is shed.

Every item that must be computed (not in the cache) counts from the moment it is admitted until
its model answer: at most ``queue_max_items`` in all and ``queue_max_items_per_client`` for any
one client (its API key, else its address). A request that would go past a bound is refused with
``503 Service Unavailable`` and ``Retry-After`` (about the time the queue takes to drain), before
its body is read where the client is already at a bound, instead of queueing without end: every
queued item holds its bytes and its decoded picture.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MAX_RETRY_AFTER_S = 60


class Overloaded(Exception):
    """The work queue is full (for everyone, or for this client); retry in ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class Admission:
    """Counts admitted items; :meth:`admit` refuses one past a bound with :class:`Overloaded`."""

    def __init__(self, max_items: int, max_items_per_client: int, seconds_per_item: Callable[[], float | None]):
        self.max_items = max_items
        self.max_items_per_client = max_items_per_client
        self._seconds_per_item = seconds_per_item
        self._per_client: Counter[str] = Counter()
        self._total = 0

    def queued(self, client: str | None = None) -> int:
        return self._total if client is None else self._per_client[client]

    def check(self, client: str) -> None:
        """Raise :class:`Overloaded` if one more item of ``client`` would go past a bound."""
        if self._total >= self.max_items:
            raise Overloaded(f"the service is busy ({self._total} items queued); retry later", self.retry_after_s())
        if self._per_client[client] >= self.max_items_per_client:
            raise Overloaded(
                f"this client already has {self._per_client[client]} items queued (the most one client may have); retry later",
                self.retry_after_s(),
            )

    @contextmanager
    def admit(self, client: str) -> Iterator[None]:
        """Hold one place in the queue for the block."""
        self.check(client)
        self._total += 1
        self._per_client[client] += 1
        try:
            yield
        finally:
            self._total -= 1
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]

    def retry_after_s(self) -> int:
        """Seconds until about the current queue has been computed (1 to 60)."""
        per_item = self._seconds_per_item() or 1.0
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(self._total * per_item)))
