"""Micro-batching: items from concurrent requests share one model call.

One batcher per worker process. Items wait at most ``max_wait_s`` for company (or until
``max_size`` are waiting) in a :class:`~genspot.backend.model.fair.FairQueue`: clients take turns
(one client's flood cannot take all the model time), and within a client items go most urgent
first (RFC 9218's urgency: the extension marks images in the viewport more urgent than those
near it), urgency ageing with the wait so nothing starves. A batch starts with the least served
client's most urgent items, all of one priority, so urgent items never wait for a batch of less
urgent ones of the same client, and is filled from the other clients' turns. ``max_call_s``
bounds how long one call computes (the batch holds as many items as the model has been
computing in that time, measured), since an item that arrives during a call waits for it: a
long call is the floor of every other client's latency. Long calls serve a lone client best
(fewer, fuller batches), so the bound is cut to ``shared_call_s`` only while the model is
shared: while two or more clients have items waiting or have asked within ``shared_window_s``
(a reader's next on-screen images follow within a second or two). An item whose requesters
are all gone (cancelled) leaves the queue at once and is never computed. The model runs in a
dedicated thread so the event loop keeps serving while it computes, and items that arrive
meanwhile form the next batch. When a model call fails for a batch of several items, each is retried alone,
so one input the model cannot compute (or a batch too large for the device's memory) fails only
itself, with :class:`ModelError`; a model that fails everything costs one extra call per item.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from genspot.backend.errors import ModelError
from genspot.backend.metrics import Metrics
from genspot.backend.model.fair import DEFAULT_AGE_S, LOCAL_CLIENT, FairQueue, Ticket

log = logging.getLogger(__name__)
Predict = Callable[[torch.Tensor, list[str | None]], tuple[np.ndarray, np.ndarray]]
DEFAULT_PRIORITY = 3  # RFC 9218's default urgency (0 most urgent, 7 least)
SHARED_WINDOW_S = 2.0
"""How long a client that asked for model work still counts as sharing the model: a few of the
gaps between a reader's requests (its answer under load, then scrolling on), so short calls last
while two clients take turns; a lone client is back to long calls this long after the other's last."""


@dataclass
class _Pending:
    image: torch.Tensor
    caption: str | None
    future: asyncio.Future


class MicroBatcher:
    """``await batcher.submit(image, caption, ticket) -> (p_ai, p_source_row)``; start with ``async with``."""

    def __init__(
        self,
        predict: Predict,
        max_size: int = 32,
        max_wait_s: float = 0.005,
        metrics: Metrics | None = None,
        max_call_s: float | None = None,
        age_s: float = DEFAULT_AGE_S,
        shared_call_s: float | None = None,
        shared_window_s: float = SHARED_WINDOW_S,
    ):
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.max_call_s = max_call_s
        self.shared_call_s = shared_call_s
        self.shared_window_s = shared_window_s
        self._asked: dict[str, float] = {}  # client -> when it last asked for model work, oldest first
        self._predict = predict
        self._metrics = metrics
        self._queue: FairQueue[_Pending] = FairQueue(age_s)
        self._seconds_per_item: float | None = None  # measured, a moving average
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genspot-model")
        self._task: asyncio.Task | None = None

    @property
    def seconds_per_item(self) -> float | None:
        """What one item has been costing the model lately (None before the first call)."""
        return self._seconds_per_item

    def waiting(self) -> int:
        return len(self._queue)

    async def __aenter__(self) -> "MicroBatcher":
        self._task = asyncio.create_task(self._run(), name="genspot-batcher")
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for entry in self._queue.take(len(self._queue)):
            if not entry.value.future.done():
                entry.value.future.set_exception(ModelError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, image: torch.Tensor, caption: str | None, ticket: Ticket | None = None) -> tuple[float, np.ndarray]:
        """The model's answer for ``image``, queued at ``ticket``'s place (default: a local
        client's, default priority); cancelling the call while the item waits takes it out of
        the queue uncomputed."""
        if self._task is None or self._task.done():
            raise ModelError("the model batcher is not running")
        ticket = ticket or Ticket(LOCAL_CLIENT, DEFAULT_PRIORITY)
        self._asked.pop(ticket.client, None)
        self._asked[ticket.client] = time.monotonic()
        future = asyncio.get_running_loop().create_future()
        ticket.join(self._queue, _Pending(image, caption, future))
        try:
            return await future
        finally:
            ticket.leave()

    def _call_budget(self) -> float | None:
        """``max_call_s``, or ``shared_call_s`` where shorter while the model is shared."""
        horizon = time.monotonic() - self.shared_window_s
        while self._asked and next(iter(self._asked.values())) < horizon:
            del self._asked[next(iter(self._asked))]
        if self.shared_call_s is None or len(self._asked.keys() | self._queue.clients()) < 2:
            return self.max_call_s
        return self.shared_call_s if self.max_call_s is None else min(self.max_call_s, self.shared_call_s)

    def _limit(self) -> int:
        """Items in the next call: ``max_size``, or fewer where calls would outlast the call budget."""
        budget = self._call_budget()
        if budget is None or self._seconds_per_item is None:
            return self.max_size
        return max(1, min(self.max_size, round(budget / self._seconds_per_item)))

    async def _collect(self) -> list[_Pending]:
        """Block for the first item, give others ``max_wait_s`` to join unless the batch is full,
        then take the next turns."""
        await self._queue.nonempty.wait()
        limit = self._limit()
        if len(self._queue) < limit and self.max_wait_s > 0:
            await asyncio.sleep(self.max_wait_s)
        return [entry.value for entry in self._queue.take(limit) if not entry.value.future.done()]

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            if batch:
                await self._serve(batch)

    async def _serve(self, batch: list[_Pending]) -> None:
        """One model call for ``batch``, settling its items' futures; a failed batch of several
        is served again one item at a time."""
        started = time.perf_counter()
        try:
            p_ai, p_source = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict_batch, batch)
        except Exception as exc:  # the model failed on this batch; the service lives on
            if self._metrics:
                self._metrics.model_errors.inc()
            if len(batch) > 1:
                log.warning("model call failed for a batch of %d (%s: %s); retrying each item alone", len(batch), type(exc).__name__, exc)
                for pending in batch:
                    if not pending.future.done():  # its client may have gone meanwhile
                        await self._serve([pending])
                return
            log.exception("model call failed for a single item")
            if not batch[0].future.done():
                batch[0].future.set_exception(ModelError(f"model inference failed: {type(exc).__name__}: {exc}"))
            return
        elapsed = time.perf_counter() - started
        per_item = elapsed / len(batch)
        self._seconds_per_item = per_item if self._seconds_per_item is None else 0.8 * self._seconds_per_item + 0.2 * per_item
        if self._metrics:
            self._metrics.batch_size.observe(len(batch))
            self._metrics.model_latency.observe(elapsed)
        for index, pending in enumerate(batch):
            if not pending.future.done():
                pending.future.set_result((float(p_ai[index]), p_source[index]))

    def _predict_batch(self, batch: list[_Pending]) -> tuple[np.ndarray, np.ndarray]:
        images = torch.stack([pending.image for pending in batch])
        p_ai, p_source = self._predict(images, [pending.caption for pending in batch])
        if len(p_ai) != len(batch) or len(p_source) != len(batch):
            raise ValueError(f"model returned {len(p_ai)} results for {len(batch)} inputs")
        return np.asarray(p_ai), np.asarray(p_source)
