"""Failed authentication is rate-limited per address, and /schema is closed when API keys are set
(a setting); health, readiness and metrics stay open."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app

KEY = {"X-API-Key": "k1"}


def _from(address: str, **headers) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


def test_wrong_keys_from_one_address_meet_a_429(service_settings):
    """The issue's drill: 200 wrong keys from one address, with the default settings."""
    with TestClient(create_app(service_settings.replace(api_keys=("k1",)))) as client:
        statuses = [client.get("/v1/model", headers={"X-API-Key": f"guess-{n}"}).status_code for n in range(200)]
    assert statuses[0] == 401
    assert 429 in statuses
    assert statuses.index(429) <= 20
    assert set(statuses[statuses.index(429):]) == {429}  # it stays throttled for the window


def test_after_too_many_failures_even_the_right_key_waits(service_settings):
    settings = service_settings.replace(api_keys=("k1",), auth_failures_per_client=3, trust_forwarded_for=True)
    with TestClient(create_app(settings)) as client:
        wrong = [client.post("/v1/detect", json={"items": []}, headers=_from("198.51.100.7", **{"X-API-Key": "no"})) for _ in range(4)]
        right_here = client.get("/v1/model", headers=_from("198.51.100.7", **KEY))
        right_elsewhere = client.get("/v1/model", headers=_from("198.51.100.8", **KEY))
        missing_elsewhere = client.get("/v1/model", headers=_from("198.51.100.8"))
    assert [response.status_code for response in wrong] == [401, 401, 401, 429]
    assert wrong[3].headers["content-type"].startswith("application/problem+json")
    assert int(wrong[3].headers["retry-after"]) >= 1
    assert right_here.status_code == 429  # otherwise a guess that hits would still be told apart
    assert right_elsewhere.status_code == 200 and missing_elsewhere.status_code == 401


def test_valid_keys_do_not_count_as_failures(service_settings):
    settings = service_settings.replace(api_keys=("k1",), auth_failures_per_client=2)
    with TestClient(create_app(settings)) as client:
        assert {client.get("/v1/model", headers=KEY).status_code for _ in range(10)} == {200}


@pytest.mark.parametrize("path", ["/schema", "/schema/openapi.json", "/schema/swagger"])
def test_the_schema_is_closed_when_keys_are_set(service_settings, path):
    with TestClient(create_app(service_settings.replace(api_keys=("k1",)))) as client:
        closed = client.get(path)
        keyed = client.get(path, headers=KEY)
        wrong = client.get(path, headers={"X-API-Key": "no"})
    assert closed.status_code == 401 and closed.headers["content-type"].startswith("application/problem+json")
    assert wrong.status_code == 401
    assert keyed.status_code == 200


def test_the_schema_can_be_opened_or_closed_by_setting(service_settings):
    with TestClient(create_app(service_settings.replace(api_keys=("k1",), open_schema=True))) as client:
        assert client.get("/schema/openapi.json").status_code == 200
    with TestClient(create_app(service_settings)) as client:
        assert client.get("/schema/openapi.json").status_code == 200  # no keys: an open instance, open schema


def test_health_readiness_and_metrics_stay_open(service_settings):
    with TestClient(create_app(service_settings.replace(api_keys=("k1",)))) as client:
        assert [client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics")] == [200, 200, 200]
        assert client.get("/v1/model").status_code == 401
