"""Work for clients that disconnected is dropped, on a real `genspot serve` (slow model, batches of one)."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import httpx
from PIL import Image

from backend_helpers import metric_value

ABANDONED = 6


def _body(n: int) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), (n * 37 % 256, 60, 200)).save(buffer, "PNG")  # distinct images: no shared work
    return {"items": [{"image_b64": base64.b64encode(buffer.getvalue()).decode()}]}


async def _give_up(client: httpx.AsyncClient, body: dict) -> str:
    """Send, then hang up before the answer comes (the model is busy)."""
    try:
        await client.post("/v1/detect", json=body, timeout=httpx.Timeout(30.0, read=0.2))
    except httpx.ReadTimeout:
        return "gave up"
    return "answered"


def _metrics(server) -> str:
    return httpx.get(server.url + "/metrics", timeout=10).text


def test_work_of_clients_that_disconnected_is_never_computed(backend_server, slow_bundle):
    server = backend_server(slow_bundle, batch_max_size=1, batch_max_wait_ms=0)

    async def scenario() -> tuple[httpx.Response, list[str]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            busy = asyncio.ensure_future(client.post("/v1/detect", json=_body(0)))  # keeps the model busy
            await asyncio.sleep(0.05)
            outcomes = await asyncio.gather(*(_give_up(client, _body(n)) for n in range(1, ABANDONED + 1)))
            answered = await busy
            fresh = await client.post("/v1/detect", json=_body(99))  # a new client's item is served next
            assert fresh.status_code == 200 and fresh.json()["results"][0]["status"] == "ok"
            return answered, outcomes

    answered, outcomes = asyncio.run(scenario())
    assert answered.status_code == 200 and outcomes == ["gave up"] * ABANDONED
    time.sleep(1.0)  # anything still queued would be computing now
    metrics = _metrics(server)
    model_calls = metric_value(metrics, "genspot_batch_size_count")
    dropped = metric_value(metrics, "genspot_abandoned_total", work="compute")
    assert model_calls <= 3, f"{model_calls:.0f} model calls: work for clients that had gone was computed"  # busy + fresh (+ 1 race)
    assert dropped >= ABANDONED - 1
    assert metric_value(metrics, "genspot_disconnected_total") == ABANDONED
