"""Shared fixtures for the service tests: settings pointing at the tiny bundle and the local image server."""

from __future__ import annotations

import pytest

from genspot.backend.settings import Settings
from tests.fixtures.service_app import service_settings as settings_for


@pytest.fixture
def service_settings(tiny_bundle, image_server) -> Settings:
    """In-process cache, URLs on the test image server allowed, short batching window."""
    return settings_for(
        tiny_bundle,
        image_server.port,
        fetch_total_timeout_s=3.0,
        fetch_read_timeout_s=1.0,
        breaker_reset_s=0.3,
        cors_origins=("chrome-extension://abcdefghijklmnopabcdefghijklmnop",),
        use_alt_text=True,  # the tiny bundle's p_ai reads captions ("full"): tests send them on purpose
    )
