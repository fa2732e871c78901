"""Sharing the model between clients, in-process: fair turns, ageing and promoted priorities, bounded queues.

The model is the tiny bundle's, held at a gate: each call waits until the test opens it, so the
test can queue exactly the work it wants behind a running call and then read, from the
alt-texts each call received, in which order the model served the items.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
import time

import pytest
from PIL import Image

from genspot.backend.api.app import create_app
from genspot.bundle import load_bundle
from tests.fixtures.service_app import asgi_client

from backend_helpers import b64

KEYS = ("flood", "page", "third")


class Gate:
    """The real model behind a gate: records the alt-texts of every call, computes once opened."""

    def __init__(self, bundle):
        self.bundle = dataclasses.replace(bundle)
        self.bundle.predict = self.predict
        self._predict = bundle.predict
        self.calls: list[list[str]] = []
        self.opened = threading.Event()

    def predict(self, images, captions):
        self.calls.append(list(captions))
        self.opened.wait(30)
        return self._predict(images, captions)

    def call_of(self, caption: str) -> int:
        return next(index for index, call in enumerate(self.calls) if caption in call)


@pytest.fixture(scope="module")
def loaded_bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture
def gate(loaded_bundle) -> Gate:
    return Gate(loaded_bundle)


def _item(caption: str, priority: int | None = None) -> dict:
    colour = sum(map(ord, caption)) * 7919  # one picture per caption: no two items share work
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (colour % 256, colour // 256 % 256, 77)).save(buffer, "PNG")
    item = {"image_b64": b64(buffer.getvalue()), "alt_text": caption}
    return item if priority is None else {**item, "priority": priority}


def _settings(service_settings, **overrides):
    return service_settings.replace(
        api_keys=KEYS, rate_limit_per_client=10**9, rate_limit_per_key=10**9, batch_max_size=4, batch_max_wait_ms=0.0, **overrides
    )


async def _until(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the service never reached the expected state"
        await asyncio.sleep(0.01)


def _post(client, key: str, *items: dict):
    return asyncio.ensure_future(client.post("/v1/detect", json={"items": list(items)}, headers={"X-API-Key": key}))


def test_another_clients_item_is_served_next_whatever_the_flood_priority(service_settings, gate):
    async def scenario():
        app = create_app(_settings(service_settings), gate.bundle)
        async with asgi_client(app) as client:
            batcher = app.state.resources.service.batcher
            first = _post(client, "flood", _item("f0", 0))
            await _until(lambda: gate.calls)
            flood = _post(client, "flood", *(_item(f"f{n}", 0) for n in range(1, 25)))
            await _until(lambda: batcher.waiting() == 24)
            page = _post(client, "page", _item("p", 1))
            await _until(lambda: batcher.waiting() == 25)
            gate.opened.set()
            answers = await asyncio.gather(first, flood, page)
        assert [answer.status_code for answer in answers] == [200] * 3

    asyncio.run(scenario())
    assert gate.call_of("p") == 1  # right after the call running when it came, not after 6 calls of flood


def test_waiting_ages_so_a_less_urgent_item_is_not_starved(service_settings, gate):
    async def scenario():
        app = create_app(_settings(service_settings, priority_age_s=0.05), gate.bundle)
        async with asgi_client(app) as client:
            batcher = app.state.resources.service.batcher
            first = _post(client, "page", _item("busy"))
            await _until(lambda: gate.calls)
            old = _post(client, "page", _item("old, least urgent", 7))
            await _until(lambda: batcher.waiting() == 1)
            await asyncio.sleep(0.6)  # worth 12 steps of priority: more than 7 - 0
            new = _post(client, "page", _item("new, most urgent", 0))
            await _until(lambda: batcher.waiting() == 2)
            gate.opened.set()
            await asyncio.gather(first, old, new)

    asyncio.run(scenario())
    assert gate.call_of("old, least urgent") < gate.call_of("new, most urgent")


def test_an_item_asked_again_more_urgently_moves_up(service_settings, gate):
    async def scenario():
        app = create_app(_settings(service_settings), gate.bundle)
        async with asgi_client(app) as client:
            batcher = app.state.resources.service.batcher
            first = _post(client, "page", _item("busy"))
            await _until(lambda: gate.calls)
            below = _post(client, "page", _item("scrolled past", 6))
            others = _post(client, "page", *(_item(f"near {n}", 4) for n in range(3)))
            await _until(lambda: batcher.waiting() == 4)
            again = _post(client, "page", _item("scrolled past", 1))  # back on screen
            await asyncio.sleep(0.1)
            gate.opened.set()
            await asyncio.gather(first, below, others, again)
        return (await again).json()["results"][0]

    result = asyncio.run(scenario())
    assert result["status"] == "ok"
    assert gate.call_of("scrolled past") < gate.call_of("near 0")


def test_queue_bounds_answer_503_with_retry_after_and_spare_other_clients(service_settings, gate):
    async def scenario():
        app = create_app(_settings(service_settings, queue_max_items=6, queue_max_items_per_client=4), gate.bundle)
        async with asgi_client(app) as client:
            admission = app.state.resources.service.admission
            held = [_post(client, "flood", _item("f0"))]
            await _until(lambda: gate.calls)
            held.append(_post(client, "flood", *(_item(f"f{n}") for n in range(1, 4))))
            await _until(lambda: admission.queued() == 4)
            over_own = await client.post("/v1/detect", json={"items": [_item("f4")]}, headers={"X-API-Key": "flood"})
            held.append(_post(client, "page", _item("p0"), _item("p1")))
            await _until(lambda: admission.queued() == 6)
            over_all = await client.post("/v1/detect", json={"items": [_item("t0")]}, headers={"X-API-Key": "third"})
            gate.opened.set()
            served = await asyncio.gather(*held)
            later = await client.post("/v1/detect", json={"items": [_item("f5")]}, headers={"X-API-Key": "flood"})
        return over_own, over_all, served, later

    over_own, over_all, served, later = asyncio.run(scenario())
    for refused in (over_own, over_all):
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "this client" in over_own.json()["detail"]
    assert all(answer.status_code == 200 for answer in served) and later.status_code == 200
    assert not any("f4" in call or "t0" in call for call in gate.calls)  # refused work never reached the model
