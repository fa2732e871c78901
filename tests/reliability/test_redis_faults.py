"""Redis killed, restarted and paused while a real `genspot serve` process is under load.

Pass criteria (the issue's): zero failed requests, latency bounded while Redis is away or
frozen, and caching back once it returns.
"""

from __future__ import annotations

import asyncio
import base64
import time

import httpx

from genspot.backend.api.app import create_app
from tests.fixtures.service_app import UNLIMITED, asgi_client
from tests.reliability.drill import Drill, drill_settings, post, summary
from tests.reliability.hostile import static_responses

BREAKER_RESET_S = 0.5
LATENCY_BOUND_S = 5.0
"""Far above a healthy answer (tens of ms) and far below a hang: Redis calls time out at 0.2 s."""


def _server(backend_server, tiny_bundle, redis_server, image_server):
    return backend_server(
        tiny_bundle,
        redis_url=redis_server.url,
        allow_loopback=True,
        allowed_ports=[image_server.port],
        redis_timeout_ms=200,
        breaker_reset_s=BREAKER_RESET_S,
        rate_limit_per_client=UNLIMITED,
        log_level="warning",
    )


def _mixed_body(image_server):
    """Two items a request: a URL seen again and again (cache path) and a new caption (model path)."""

    def make(n: int) -> dict:
        return {
            "items": [
                {"url": image_server.url("photo.jpg", f"drill={n % 4}"), "alt_text": "a photo"},
                {"url": image_server.url("plain.png", f"drill={n}"), "alt_text": f"caption {n}"},
            ]
        }

    return make


async def _caching_resumes(client: httpx.AsyncClient, image_server, tag: str, within_s: float = 10.0) -> bool:
    """Ask for one new item repeatedly until an answer comes back cached."""
    body = {"items": [{"url": image_server.url("photo.webp", f"resume={tag}"), "alt_text": tag}]}
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        answer = await post(client, body)
        assert not answer.failed, answer
        if answer.cached == [True]:
            return True
        await asyncio.sleep(0.1)
    return False


def test_redis_killed_restarted_and_paused_under_load(backend_server, tiny_bundle, redis_server, image_server):
    server = _server(backend_server, tiny_bundle, redis_server, image_server)

    async def drill():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            async with Drill(client, _mixed_body(image_server)) as load:
                await asyncio.sleep(1.0)
                outage_start = time.monotonic()
                await asyncio.to_thread(redis_server.stop)
                await asyncio.sleep(2.0)
                await asyncio.to_thread(redis_server.start)
                outage_end = time.monotonic()
                resumed_after_restart = await _caching_resumes(client, image_server, "restart")

                pause_start = time.monotonic()
                await asyncio.to_thread(redis_server.client().execute_command, "CLIENT", "PAUSE", 2000, "ALL")
                await asyncio.sleep(2.5)
                pause_end = time.monotonic()
                resumed_after_pause = await _caching_resumes(client, image_server, "pause")
            return load, (outage_start, outage_end), (pause_start, pause_end), resumed_after_restart, resumed_after_pause

    load, outage, pause, resumed_after_restart, resumed_after_pause = asyncio.run(drill())
    answers = load.answers
    assert len(answers) > 20, f"the drill barely ran: {summary(answers)}"
    assert not [a for a in answers if a.failed], summary(answers)
    for window in (outage, pause):
        during = load.between(*window)
        assert during, "no request was sent while Redis was away"
        assert max(a.latency_s for a in during) < LATENCY_BOUND_S, summary(during)
    assert resumed_after_restart, "caching did not resume after Redis came back"
    assert resumed_after_pause, "caching did not resume after the pause ended"
    assert redis_server.client().dbsize() > 0


def test_a_burst_of_pages_keeps_the_redis_cache(tiny_bundle, redis_server, hostile):
    """Three 48-image pages at once (144 items, several Redis calls each): a healthy Redis must
    keep serving, so the same pages sent again come back entirely from the cache."""
    settings = drill_settings(tiny_bundle, hostile.port, redis_url=redis_server.url)
    image = base64.b64encode(static_responses()["/ok.jpg"][2]).decode()
    pages = [{"items": [{"image_b64": image, "alt_text": f"page {p} image {n}"} for n in range(48)]} for p in range(3)]

    async def drill():
        async with asgi_client(create_app(settings)) as client:
            first = await asyncio.gather(*(post(client, page) for page in pages))
            again = await asyncio.gather(*(post(client, page) for page in pages))
            return first, again

    first, again = asyncio.run(drill())
    assert not [a for a in first + again if a.failed], summary(first + again)
    cached = sum(sum(a.cached) for a in again)
    assert cached == 144, f"only {cached} of 144 items were cached: Redis calls failed under the burst"
