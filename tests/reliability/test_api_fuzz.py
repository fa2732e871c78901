"""Fuzz every operation of the API from its own OpenAPI schema (schemathesis, in-process ASGI).

Bodies, headers and query strings that fit the schema (positive) and that break it (negative):
the service may refuse them (4xx problem details) or answer per item, but never with a 5xx.
The service runs with its default fetch policy (no loopback), so generated URLs cannot reach
anything on this machine.

(Operations are iterated inside the test rather than through ``schemathesis.pytest.from_fixture``,
whose lazy loader does not work with pytest 9.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from genspot.backend.api.app import create_app
from tests.fixtures.service_app import service_settings

EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def api_schema(tiny_bundle):
    service = service_settings(tiny_bundle, rate_limited=False, fetch_connect_timeout_s=0.5, fetch_total_timeout_s=1.0)
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(service))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_input_makes_the_service_fail(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"POST /v1/detect", "POST /v1/detect/upload"} <= labels, labels
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to break in an operation that takes no input

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case):
            response = case.call()
            assert response.status_code < 500, (
                f"{operation.label} answered {response.status_code} to {case.as_curl_command()}\n{response.text[:500]}"
            )

        call()


def _has_inputs(operation) -> bool:
    return any(len(part) for part in (operation.body, operation.query, operation.headers, operation.path_parameters, operation.cookies))

