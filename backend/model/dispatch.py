"""The decode threads, shared fairly between clients and within a budget of pixels.

Jobs reach the threads through a :class:`~genspot.backend.model.fair.FairQueue` instead of the thread
pool's own first-come queue, so one client's hundred queued images do not hold up another
client's one. A job also holds its image's pixels (width x height, from the header) while it
runs, out of ``max_pixels_in_flight``: decoding keeps several copies of a picture at once (RGBA,
flattened on white, RGB), about 700 MiB for a 40-megapixel RGBA PNG, so four of them decoding
side by side would add about 3 GiB; within the budget they take turns. A job larger than the
whole budget runs when no other job holds pixels. A job whose caller is cancelled while it
waits is dropped without running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from genspot.backend.model.fair import DEFAULT_AGE_S, Entry, FairQueue, Ticket

T = TypeVar("T")


@dataclass
class _Waiting:
    pixels: int
    grant: asyncio.Future


class DecodeDispatcher:
    """``await dispatcher.run(ticket, fn, *args, pixels=n)``: ``fn(*args)`` in a decode thread, in turn."""

    def __init__(self, executor: Executor, threads: int, max_pixels_in_flight: int, age_s: float = DEFAULT_AGE_S):
        self._executor = executor
        self._threads_free = threads
        self.max_pixels_in_flight = max_pixels_in_flight
        self._pixels_free = max_pixels_in_flight
        self._queue: FairQueue[_Waiting] = FairQueue(age_s)
        self._next: Entry[_Waiting] | None = None  # taken from the queue, waiting for pixels to free up

    @property
    def pixels_in_flight(self) -> int:
        return self.max_pixels_in_flight - self._pixels_free

    async def run(self, ticket: Ticket, fn: Callable[..., T], *args, pixels: int = 0) -> T:
        cost = min(pixels, self.max_pixels_in_flight)
        if self._next is None and not len(self._queue) and self._fits(cost):
            self._hold(cost)
        else:
            await self._wait_turn(ticket, cost)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._release(cost)

    async def _wait_turn(self, ticket: Ticket, cost: int) -> None:
        grant = asyncio.get_running_loop().create_future()
        ticket.join(self._queue, _Waiting(cost, grant))
        try:
            await grant
        except asyncio.CancelledError:
            if grant.done() and not grant.cancelled():  # granted just before the cancellation arrived
                self._release(cost)
            raise
        finally:
            ticket.leave()

    def _fits(self, cost: int) -> bool:
        return self._threads_free > 0 and cost <= self._pixels_free

    def _hold(self, cost: int) -> None:
        self._threads_free -= 1
        self._pixels_free -= cost

    def _release(self, cost: int) -> None:
        self._threads_free += 1
        self._pixels_free += cost
        while True:
            if self._next is None:
                taken = self._queue.take(1, clients=1)
                if not taken:
                    return
                self._next = taken[0]
            waiting = self._next.value
            if waiting.grant.done():  # its caller gave up
                self._next = None
                continue
            if not self._fits(waiting.pixels):
                return
            self._hold(waiting.pixels)
            waiting.grant.set_result(None)
            self._next = None
