"""SIGTERM while requests are in flight: they finish with full answers; new ones are refused
cleanly (connection refused), and the process exits within its graceful-shutdown budget."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.fixtures.service_app import UNLIMITED
from tests.reliability.drill import post, summary
from tests.reliability.hostile import DELAY_S

GRACE_S = 10.0
UNANSWERED = ("ConnectError", "ReadError", "RemoteProtocolError: Server disconnected without sending a response")
"""Transport errors that mean no byte of a response was sent: the request was never served."""


def _never_answered(answer) -> bool:
    """A request after SIGTERM may be refused (listener closed), or, with worker processes, accepted
    by the kernel on the supervisor's still-open socket and dropped unserved; never half-answered."""
    return isinstance(answer.status, str) and answer.status.startswith(UNANSWERED)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_in_flight_requests_finish(backend_server, tiny_bundle, hostile, workers):
    server = backend_server(
        tiny_bundle,
        workers=workers,
        allow_loopback=True,
        allowed_ports=[hostile.port],
        graceful_shutdown_s=GRACE_S,
        rate_limit_per_client=UNLIMITED,
        log_level="warning",
    )

    async def drill():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            bodies = [{"items": [{"url": hostile.url(f"/delayed.jpg?sigterm={n}")}, {"url": hostile.url("/ok.jpg")}]} for n in range(8)]
            in_flight = [asyncio.create_task(post(client, body)) for body in bodies]
            await asyncio.sleep(DELAY_S / 3)  # every request is now waiting on its slow image
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(DELAY_S / 3)
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as fresh_client:
                late = await post(fresh_client, bodies[0])
            return await asyncio.gather(*in_flight), late

    sent = time.monotonic()
    answers, late = asyncio.run(drill())
    exit_code = server.process.wait(GRACE_S + 5)
    assert not [a for a in answers if a.failed], summary(answers)
    assert not late.failed or _never_answered(late), f"a request after SIGTERM was half-answered: {late}"
    # one process re-raises the SIGTERM it handled once shut down; a supervisor of workers exits 0
    assert exit_code in (0, -signal.SIGTERM), server.log()[-2000:]
    assert time.monotonic() - sent < GRACE_S + 5
    assert "Traceback" not in server.log(), server.log()[-3000:]
