"""The micro-batcher with the real tiny bundle: batching, isolation of failures, a free event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import torch

from genspot.backend.errors import ModelError
from genspot.backend.metrics import Metrics
from genspot.backend.model.batcher import MicroBatcher
from genspot.backend.model.fair import Ticket
from genspot.bundle import load_bundle


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


def _images(bundle, count):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(count, 3, bundle.image_size, bundle.image_size, generator=generator)


def test_concurrent_submissions_form_batches_with_the_same_answers(bundle):
    images = _images(bundle, 10)
    expected_ai, expected_source = bundle.predict(images, [f"c{i}" for i in range(10)])
    sizes = []

    def predict(batch, captions):
        sizes.append(len(captions))
        return bundle.predict(batch, captions)

    async def run():
        async with MicroBatcher(predict, max_size=4, max_wait_s=0.1) as batcher:
            return await asyncio.gather(*(batcher.submit(images[i], f"c{i}") for i in range(10)))

    results = asyncio.run(run())
    assert sizes == [4, 4, 2]
    for index, (p_ai, p_source) in enumerate(results):
        assert p_ai == pytest.approx(float(expected_ai[index]), abs=1e-5)
        assert p_source == pytest.approx(expected_source[index], abs=1e-5)


def test_a_failing_batch_is_retried_item_by_item_and_fails_only_the_bad_one(bundle):
    """A corrupted input (wrong shape) breaks the batch it lands in; its batch-mate, retried alone,
    is served, and so are the batches after it."""
    images = _images(bundle, 3)
    corrupted = torch.rand(3, bundle.image_size // 2, bundle.image_size // 2)
    metrics = Metrics()
    sizes = []

    def predict(batch, captions):
        sizes.append(len(captions))
        return bundle.predict(batch, captions)

    async def run():
        async with MicroBatcher(predict, max_size=8, max_wait_s=0.05, metrics=metrics) as batcher:
            first = await asyncio.gather(
                batcher.submit(images[0], "a"), batcher.submit(corrupted, "b"), return_exceptions=True
            )
            second = await asyncio.gather(batcher.submit(images[1], "c"), batcher.submit(images[2], "d"))
            return first, second

    first, second = asyncio.run(run())
    expected_ai, _ = bundle.predict(images[:1], ["a"])
    assert first[0][0] == pytest.approx(float(expected_ai[0]), abs=1e-5)
    assert isinstance(first[1], ModelError) and first[1].code == "model_failed"
    assert [isinstance(p_ai, float) for p_ai, _ in second] == [True, True]
    assert sizes == [1, 1, 2]  # each item alone (the mixed-shape stack never reached the model), then the next batch
    assert metrics.model_errors._value.get() == 2  # the batch, then the bad item alone


def test_waiting_items_are_served_most_urgent_first_one_priority_per_batch(bundle):
    """Submitted while the model computes: viewport images (1) before items without a priority
    (3, the default) before images near the viewport (4), arrival order within a priority."""
    images = _images(bundle, 1)
    calls = []
    computing, release = threading.Event(), threading.Event()

    def predict(batch, captions):
        calls.append(captions)
        computing.set()
        release.wait(10)
        return bundle.predict(batch, captions)

    async def run():
        async with MicroBatcher(predict, max_size=8, max_wait_s=0.0) as batcher:
            first = asyncio.ensure_future(batcher.submit(images[0], "first"))
            await asyncio.to_thread(computing.wait, 10)
            waiting = [
                batcher.submit(images[0], caption, Ticket("page", priority))
                for caption, priority in [("near 1", 4), ("near 2", 4), ("seen 1", 1), ("plain", 3), ("seen 2", 1), ("near 3", 4)]
            ]
            later = asyncio.gather(*waiting)
            await asyncio.sleep(0.05)  # every item queued behind the running call
            release.set()
            await asyncio.gather(first, later)

    asyncio.run(run())
    assert calls == [["first"], ["seen 1", "seen 2"], ["plain"], ["near 1", "near 2", "near 3"]]


def test_inference_never_blocks_the_event_loop(bundle):
    """While a slow model call runs in its thread, the loop keeps ticking."""

    def slow_predict(batch, captions):
        time.sleep(0.5)
        return bundle.predict(batch, captions)

    async def run():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async with MicroBatcher(slow_predict, max_size=2, max_wait_s=0.0) as batcher:
            task = asyncio.create_task(ticker())
            await batcher.submit(_images(bundle, 1)[0], None)
            task.cancel()
        return ticks

    assert asyncio.run(run()) >= 20


def test_calls_are_cut_short_while_another_client_asks_and_grow_back_once_it_has_gone():
    """A client alone gets calls of up to ``max_call_s`` (throughput); once a second client asks,
    calls are cut to ``shared_call_s``, so that client's items wait only for short calls; after
    ``shared_window_s`` without its asking, the lone client's calls grow back."""
    per_item_s = 0.03  # measured by the batcher: alone, calls of about 0.3 / 0.03 = 10 items; shared, 0.06 / 0.03 = 2
    calls: list[list[str]] = []
    image = torch.zeros(3, 8, 8)

    def predict(batch, captions):
        calls.append(list(captions))
        time.sleep(per_item_s * len(captions))
        return np.zeros(len(captions)), np.zeros((len(captions), 2))

    async def run():
        async with MicroBatcher(predict, max_size=16, max_wait_s=0.0, max_call_s=0.3, shared_call_s=0.06, shared_window_s=1.0) as batcher:

            def flood(tag: str) -> asyncio.Future:
                return asyncio.gather(*(batcher.submit(image, f"{tag}{n}", Ticket("flood", 0)) for n in range(20)))

            await batcher.submit(image, "warm", Ticket("flood", 0))  # the batcher measures an item's cost
            alone = flood("alone")
            while not calls[-1][0].startswith("alone"):
                await asyncio.sleep(0.005)
            await batcher.submit(image, "probe", Ticket("probe", 1))  # arrives during the flood's long call
            await alone
            await asyncio.sleep(1.1)  # the probe's client has not asked for the window
            await flood("again")

    asyncio.run(run())
    probe_call = next(index for index, call in enumerate(calls) if "probe" in call)
    assert len(calls[probe_call - 1]) >= 6, calls  # the flood's call running when the probe came: long
    assert all(len(call) <= 3 for call in calls[probe_call:] if call[0].startswith(("alone", "probe"))), calls
    assert len(next(call for call in calls if call[0].startswith("again"))) >= 6, calls


def test_submitting_after_close_is_a_model_error(bundle):
    async def run():
        batcher = MicroBatcher(bundle.predict)
        async with batcher:
            pass
        with pytest.raises(ModelError):
            await batcher.submit(_images(bundle, 1)[0], None)

    asyncio.run(run())
