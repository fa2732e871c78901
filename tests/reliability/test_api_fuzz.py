"""Fuzz every operation of the API from its own OpenAPI schema (schemathesis, in-process ASGI).

Valid and invalid bodies, headers and query strings: the service may refuse them (4xx problem
details) or answer per item, but it must never answer 500. The service runs with its default
fetch policy (no loopback), so generated URLs cannot reach anything on this machine.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from genspot.backend.app import create_app
from genspot.backend.settings import Settings
from tests.reliability.conftest import UNLIMITED


@pytest.fixture(scope="module")
def api_schema(tiny_bundle):
    service = Settings(
        bundle=str(tiny_bundle),
        fetch_connect_timeout_s=0.5,
        fetch_total_timeout_s=1.0,
        rate_limit_per_client=UNLIMITED,
        rate_limit_per_key=UNLIMITED,
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(service))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_service_fail(case):
    case.call_and_validate(checks=[not_a_server_error])
