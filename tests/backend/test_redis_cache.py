"""The service with a real Redis: shared cache, outages served uncached, recovery, shared rate limits."""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app
from genspot.backend.cache.breaker import CircuitBreaker
from genspot.backend.cache.store import RedisCache
from tests.fixtures.services import free_port


def _detect(client, url):
    response = client.post("/v1/detect", json={"items": [{"url": url}]})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def test_results_are_stored_in_redis_with_cluster_safe_keys(service_settings, redis_server, image_server):
    settings = service_settings.replace(redis_url=redis_server.url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["cache_kind"] == "redis"
        first = _detect(client, image_server.url("photo.jpg", "t=redis"))
        second = _detect(client, image_server.url("photo.jpg", "t=redis"))
    assert (first["cached"], second["cached"]) == (False, True)
    assert image_server.hits("photo.jpg?t=redis") == 1
    keys = sorted(key.decode() for key in redis_server.client().keys("genspot:*"))
    result_keys = [key for key in keys if key.startswith("genspot:r:{")]
    url_keys = [key for key in keys if key.startswith("genspot:u:{")]
    assert len(result_keys) == 1 and len(url_keys) == 1
    assert first["model_version"] in result_keys[0]
    ttl = redis_server.client().ttl(result_keys[0])
    assert 0 < ttl <= settings.cache_ttl_s


def test_redis_outage_is_served_uncached_then_caching_resumes(service_settings, redis_server, image_server):
    settings = service_settings.replace(redis_url=redis_server.url, breaker_reset_s=0.3)
    with TestClient(create_app(settings)) as client:
        assert _detect(client, image_server.url("photo.jpg", "t=outage-before"))["status"] == "ok"
        redis_server.stop()

        started = time.monotonic()
        during = [_detect(client, image_server.url("plain.png", "t=outage")) for _ in range(3)]
        elapsed = time.monotonic() - started
        assert all(result["status"] == "ok" and result["cached"] is False for result in during)
        assert elapsed < 5.0  # short timeouts and the open breaker keep answers fast
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["cache"] != "ok"

        redis_server.start()
        time.sleep(settings.breaker_reset_s + 0.1)
        assert client.get("/readyz").json()["cache"] == "ok"
        after = [_detect(client, image_server.url("photo.webp", "t=outage-after")) for _ in range(2)]
        assert [result["cached"] for result in after] == [False, True]
    assert redis_server.client().exists(*redis_server.client().keys("genspot:r:*"))


def test_redis_cache_fails_fast_and_breaker_opens(redis_server):
    import asyncio

    async def run():
        cache = RedisCache(redis_server.url, timeout_s=0.2, retries=1, breaker=CircuitBreaker(failures=2, reset_s=60))
        await cache.set("genspot:test:{a}", b"value", 60)
        assert await cache.get("genspot:test:{a}") == b"value"
        redis_server.stop()
        started = time.monotonic()
        results = [await cache.get("genspot:test:{a}") for _ in range(5)]
        elapsed = time.monotonic() - started
        await cache.close()
        return results, elapsed, cache.breaker.state

    results, elapsed, state = asyncio.run(run())
    assert results == [None] * 5
    assert state == "open"
    assert elapsed < 2.0  # two failed calls, then the breaker answers without touching the network


def test_rate_limits_are_shared_through_redis(service_settings, redis_server):
    settings = service_settings.replace(redis_url=redis_server.url, rate_limit_per_client=3)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        codes = [first.get("/v1/model").status_code, second.get("/v1/model").status_code]
        codes += [first.get("/v1/model").status_code, second.get("/v1/model").status_code]
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize("failures", [1, 3])
def test_breaker_opens_after_consecutive_failures_and_allows_one_trial(failures):
    now = [0.0]
    breaker = CircuitBreaker(failures=failures, reset_s=5.0, clock=lambda: now[0])
    for _ in range(failures - 1):
        breaker.record_failure()
        assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 5.0
    assert breaker.allow() and not breaker.allow()  # one trial call at a time
    breaker.record_failure()
    assert breaker.state == "open"
    now[0] = 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_service_starts_and_answers_with_redis_down_from_the_start(service_settings, image_server):
    settings = service_settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        result = _detect(client, image_server.url("photo.jpg", "t=no-redis"))
    assert ready.status_code == 200 and ready.json()["cache"].startswith("unavailable")
    assert result["status"] == "ok" and result["cached"] is False


def test_redis_cluster_client_caches_and_counts(service_settings, redis_cluster_server, image_server):
    """Keys and commands are cluster-safe: the service works through the cluster client."""
    settings = service_settings.replace(redis_url=redis_cluster_server.url, redis_cluster=True, rate_limit_per_client=2)
    with TestClient(create_app(settings)) as client:
        first = _detect(client, image_server.url("plain.png", "t=cluster"))
        second = _detect(client, image_server.url("plain.png", "t=cluster"))
        limited = client.get("/v1/model").status_code
        assert client.get("/readyz").json()["cache"] == "ok"
    assert (first["cached"], second["cached"], limited) == (False, True, 429)
    assert redis_cluster_server.client().keys("genspot:r:*")
