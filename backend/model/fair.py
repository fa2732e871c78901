"""Waiting work of many clients, served fairly, most urgent first within each client.

Each client's items wait in a queue of their own, ordered by ``arrival + priority * age_s``: a
more urgent item (lower priority, RFC 9218's urgency) goes first, but urgency ages, so an item
of priority 4 that has waited ``3 * age_s`` goes before a new item of priority 1, and nothing
starves behind a stream of more urgent ones. Between clients the turn goes to the one served
least (start-time fair queueing counted in items): a client that starts waiting is placed at
the current virtual time, or at what it has been served if that is later, so idle time earns
no credit, and one client's flood cannot keep another client's single item waiting for more
than one turn.

A :class:`Ticket` is one piece of work's place in line as it moves from queue to queue (the
decode threads, then the model); asking for it again at a more urgent priority promotes it
wherever it waits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
DEFAULT_AGE_S = 1.0
"""Seconds of waiting worth one step of priority."""
_MAX_IDLE = 1024
LOCAL_CLIENT = "local"
"""The client of work asked for in process (``genspot scan``, tests), not over HTTP."""


@dataclass(eq=False)
class Entry(Generic[T]):
    """One waiting item; ``queued`` turns false once it is taken or removed."""

    client: str
    priority: int
    arrival: float
    value: T | None
    queued: bool = True
    key: float = 0.0


class FairQueue(Generic[T]):
    """Items of many clients; :meth:`take` hands out the next turn (see the module docstring)."""

    def __init__(self, age_s: float = DEFAULT_AGE_S):
        self.age_s = age_s
        self._heaps: dict[str, list[tuple[float, int, Entry[T]]]] = {}
        self._waiting: dict[str, int] = {}  # queued entries per client; a client with none is forgotten
        self._served: dict[str, float] = {}  # start-time fair queueing: items served, from the virtual time on
        self._idle: dict[str, float] = {}  # the same for clients with nothing waiting, while ahead of the virtual time
        self._virtual = 0.0
        self._order = itertools.count()
        self._size = 0
        self.nonempty = asyncio.Event()

    def __len__(self) -> int:
        return self._size

    def waiting(self, client: str) -> int:
        return self._waiting.get(client, 0)

    def clients(self) -> set[str]:
        """The clients with items waiting."""
        return set(self._waiting)

    def put(self, client: str, priority: int, value: T, arrival: float | None = None) -> Entry[T]:
        entry = Entry(client, priority, time.monotonic() if arrival is None else arrival, value)
        if client not in self._waiting:
            self._heaps[client] = []
            self._waiting[client] = 0
            self._served[client] = max(self._virtual, self._idle.pop(client, 0.0))
        self._waiting[client] += 1
        self._size += 1
        self._push(entry)
        self.nonempty.set()
        return entry

    def promote(self, entry: Entry[T], priority: int) -> None:
        """Move a waiting entry to a more urgent ``priority`` (its arrival time stays)."""
        if entry.queued and priority < entry.priority:
            entry.priority = priority
            self._push(entry)  # the older heap record no longer matches the entry's key and is skipped

    def remove(self, entry: Entry[T]) -> None:
        """Take a waiting entry out without serving it (its requesters are gone)."""
        if entry.queued:
            entry.queued = False
            entry.value = None  # what it held (a decoded image) is freed now, not when its heap record surfaces
            self._forget(entry.client, 1)

    def take(self, limit: int, clients: int | None = None) -> list[Entry[T]]:
        """Up to ``limit`` entries: the least served client's most urgent run (entries of one
        priority, in order), then the next least served client's run, up to ``clients`` clients."""
        taken: list[Entry[T]] = []
        skipped: set[str] = set()
        while len(taken) < limit and (clients is None or len(skipped) < clients):
            client = self._next_client(skipped)
            if client is None:
                break
            skipped.add(client)
            run = self._run(client, limit - len(taken))
            self._virtual = max(self._virtual, self._served[client])
            self._served[client] += len(run)
            self._forget(client, len(run))
            taken += run
        return taken

    def _push(self, entry: Entry[T]) -> None:
        entry.key = entry.arrival + entry.priority * self.age_s
        heapq.heappush(self._heaps[entry.client], (entry.key, next(self._order), entry))

    def _head(self, client: str) -> Entry[T] | None:
        heap = self._heaps[client]
        while heap and (not heap[0][2].queued or heap[0][0] != heap[0][2].key):
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def _next_client(self, skipped: set[str]) -> str | None:
        best, best_rank = None, None
        for client in self._waiting:
            if client in skipped:
                continue
            head = self._head(client)
            rank = (self._served[client], head.key)
            if best_rank is None or rank < best_rank:
                best, best_rank = client, rank
        return best

    def _run(self, client: str, limit: int) -> list[Entry[T]]:
        run: list[Entry[T]] = []
        while len(run) < limit:
            head = self._head(client)
            if head is None or (run and head.priority != run[0].priority):
                break
            heapq.heappop(self._heaps[client])
            head.queued = False
            run.append(head)
        return run

    def _forget(self, client: str, count: int) -> None:
        self._size -= count
        self._waiting[client] -= count
        if self._waiting[client] == 0:
            self._idle[client] = self._served.pop(client)
            del self._waiting[client], self._heaps[client]
            if len(self._idle) > _MAX_IDLE:  # those not ahead of the virtual time would start at it anyway
                self._idle = {other: served for other, served in self._idle.items() if served > self._virtual}
        if not self._size:
            self.nonempty.clear()


@dataclass(eq=False)
class Ticket:
    """One piece of work's place in line: who asked first, how urgently, since when."""

    client: str
    priority: int
    arrival: float = field(default_factory=time.monotonic)
    _where: tuple[FairQueue, Entry] | None = None

    def join(self, queue: FairQueue[T], value: T) -> Entry[T]:
        """Wait in ``queue`` at this ticket's place."""
        entry = queue.put(self.client, self.priority, value, self.arrival)
        self._where = (queue, entry)
        return entry

    def leave(self) -> None:
        """Out of the queue it was in (served or given up)."""
        if self._where is not None:
            queue, entry = self._where
            queue.remove(entry)
            self._where = None

    def promote(self, priority: int) -> None:
        """Asked again at ``priority``: the more urgent of the two holds from now on."""
        if priority < self.priority:
            self.priority = priority
            if self._where is not None:
                queue, entry = self._where
                queue.promote(entry, priority)
