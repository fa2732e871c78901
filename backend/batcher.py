"""Micro-batching: items from concurrent requests share one model call.

One batcher per worker process. Items wait at most ``max_wait_s`` for company (or until
``max_size`` are waiting). Waiting items are served by priority (lower first, RFC 9218's
urgency: the extension marks images in the viewport more urgent than those near it), then in
order of arrival, and one batch holds one priority, so urgent items never wait for a batch of
less urgent ones to compute. The model runs in a dedicated thread so the event loop keeps
serving while it computes, and items that arrive meanwhile form the next batch. When a
model call fails for a batch of several items, each is retried alone, so one input the model
cannot compute (or a batch too large for the device's memory) fails only itself, with
:class:`ModelError`; a model that fails everything costs one extra call per item.
"""

from __future__ import annotations

import asyncio
import logging
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from genspot.backend.errors import ModelError
from genspot.backend.metrics import Metrics

log = logging.getLogger(__name__)
Predict = Callable[[torch.Tensor, list[str | None]], tuple[np.ndarray, np.ndarray]]
DEFAULT_PRIORITY = 3  # RFC 9218's default urgency (0 most urgent, 7 least)


@dataclass(order=True)
class _Pending:
    """Ordered by ``(priority, arrival)``: the queue's order."""

    priority: int
    arrival: int
    image: torch.Tensor = field(compare=False)
    caption: str | None = field(compare=False)
    future: asyncio.Future = field(compare=False)


class MicroBatcher:
    """``await batcher.submit(image, caption, priority) -> (p_ai, p_source_row)``; start with ``async with``."""

    def __init__(self, predict: Predict, max_size: int = 32, max_wait_s: float = 0.005, metrics: Metrics | None = None):
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._predict = predict
        self._metrics = metrics
        self._queue: asyncio.PriorityQueue[_Pending] = asyncio.PriorityQueue()
        self._arrivals = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genspot-model")
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "MicroBatcher":
        self._task = asyncio.create_task(self._run(), name="genspot-batcher")
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(ModelError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, image: torch.Tensor, caption: str | None, priority: int = DEFAULT_PRIORITY) -> tuple[float, np.ndarray]:
        if self._task is None or self._task.done():
            raise ModelError("the model batcher is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(priority, next(self._arrivals), image, caption, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        """Block for the most urgent item, then gather more of its priority until the batch is
        full, the wait is over or only other priorities are waiting."""
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_size:
            if not self._queue.empty():
                pending = self._queue.get_nowait()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if pending.priority != batch[0].priority:
                self._queue.put_nowait(pending)  # keeps its place: the next batch starts with it
                break
            batch.append(pending)
        return [pending for pending in batch if not pending.future.cancelled()]

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
        if self._metrics:
            self._metrics.batch_size.observe(len(batch))
            self._metrics.model_latency.observe(time.perf_counter() - started)
        for index, pending in enumerate(batch):
            if not pending.future.done():
                pending.future.set_result((float(p_ai[index]), p_source[index]))

    def _predict_batch(self, batch: list[_Pending]) -> tuple[np.ndarray, np.ndarray]:
        images = torch.stack([pending.image for pending in batch])
        p_ai, p_source = self._predict(images, [pending.caption for pending in batch])
        if len(p_ai) != len(batch) or len(p_source) != len(batch):
            raise ValueError(f"model returned {len(p_ai)} results for {len(batch)} inputs")
        return np.asarray(p_ai), np.asarray(p_source)
