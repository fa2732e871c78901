"""Fixtures for the fault and hostile-input drills: a misbehaving image host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.hostile import HostileServer


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server
