"""SIGTERM with more queued model work than the grace period covers, on a real `genspot serve`.

The model is ``slow_bundle`` (tests/fixtures/bundles.py: the tiny bundle computing about half a
second per call), and batches hold one item, so eight concurrent one-image requests queue about
four seconds of model work against a two-second grace period. Each in-flight request must
finish (200, its item ``ok``) or get a clean 503 with ``Retry-After``, never a 500; a new
connection after SIGTERM is refused, never half-answered.
"""

from __future__ import annotations

import asyncio
import base64
import io
import signal
import time

import httpx
import pytest
from PIL import Image

GRACE_S = 2.0
REQUESTS = 8


def _body(n: int) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (n * 20 % 256, 90, 160)).save(buffer, "PNG")  # distinct images: no shared work
    return {"items": [{"image_b64": base64.b64encode(buffer.getvalue()).decode()}]}


async def _post(client: httpx.AsyncClient, body: dict) -> httpx.Response | str:
    try:
        return await client.post("/v1/detect", json=body)
    except httpx.TransportError as exc:
        return f"{type(exc).__name__}: {exc}"


def _finished(answer) -> bool:
    return isinstance(answer, httpx.Response) and answer.status_code == 200 and answer.json()["results"][0]["status"] == "ok"


def _refused_cleanly(answer) -> bool:
    """A 503 problem with Retry-After (a clean refusal of work that could not finish in time)."""
    return (
        isinstance(answer, httpx.Response)
        and answer.status_code == 503
        and answer.headers["content-type"].startswith("application/problem+json")
        and int(answer.headers["retry-after"]) > 0
        and answer.json()["status"] == 503
    )


def _never_answered(answer) -> bool:
    """Refused at connect (one process), or, with worker processes, accepted by the kernel on the
    supervisor's still-open socket and dropped before any byte of a response."""
    return isinstance(answer, str) and answer.startswith(("ConnectError", "ReadError", "RemoteProtocolError"))


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_with_queued_model_work_answers_503_never_500(backend_server, slow_bundle, monkeypatch, workers):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one core per worker: the shared test machine keeps the other
    server = backend_server(
        slow_bundle,
        workers=workers,
        batch_max_size=1,
        graceful_shutdown_s=GRACE_S,
        rate_limit_per_client=0,
        log_level="warning",
    )

    async def drill():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            warm = await _post(client, _body(0))  # the first TorchScript calls are slower (profiling)
            assert _finished(warm), warm
            in_flight = [asyncio.create_task(_post(client, _body(n))) for n in range(1, REQUESTS + 1)]
            await asyncio.sleep(0.3)  # every request is now queued or computing
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.7)  # with workers, the supervisor passes the signal on within 0.5 s
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as fresh_client:
                late = await _post(fresh_client, _body(99))
            return await asyncio.gather(*in_flight), late

    sent = time.monotonic()
    answers, late = asyncio.run(drill())
    exit_code = server.process.wait(GRACE_S + 10)
    described = [a if isinstance(a, str) else f"{a.status_code} {a.text[:120]}" for a in answers]
    assert all(_finished(a) or _refused_cleanly(a) for a in answers), described
    assert any(_refused_cleanly(a) for a in answers), f"the queue did not outlast the grace period: {described}"
    assert _never_answered(late), f"a request after SIGTERM was answered: {late}"
    assert exit_code in (0, -signal.SIGTERM), server.log()[-2000:]
    assert time.monotonic() - sent < GRACE_S + 10
    assert "Traceback" not in server.log() and "Cancel" not in server.log(), server.log()[-3000:]
