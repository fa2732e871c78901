"""A small circuit breaker: after repeated failures, stop calling a dependency for a while.

Used around Redis so that a dead or slow cache costs one short timeout now and then, not one
per request: while the breaker is open, callers skip the dependency and serve uncached.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed -> (``failures`` consecutive failures) -> open for ``reset_s`` -> one trial call."""

    def __init__(self, failures: int = 3, reset_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.failures = max(1, failures)
        self.reset_s = reset_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        """May the caller try the dependency now? In half-open state, only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._trial_running or self._consecutive >= self.failures:
            self._opened_at = self._clock()
        self._trial_running = False
