"""pytest plugin: a session-scoped mock server and a per-test handle that resets it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import MockServer


@pytest.fixture(scope="session")
def vesanor_mock_server() -> Iterator[MockServer]:
    """One vesanor-mock server for the whole test session, on 127.0.0.1 and a free port."""
    with MockServer() as server:
        yield server


@pytest.fixture
def vesanor_mock(vesanor_mock_server: MockServer) -> Iterator[MockServer]:
    """The mock server, reset before the test; server-side errors fail the test."""
    vesanor_mock_server.service.reset()
    yield vesanor_mock_server
    vesanor_mock_server.check()
