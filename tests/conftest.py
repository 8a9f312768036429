"""Shared fixtures: one real server per test module, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api
from .fuzztally import TALLY


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    """The compiled schemas, loaded once."""
    return SchemaRegistry.load()


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """A mock server on 127.0.0.1, port 0, stopped after the module."""
    with MockServer() as running:
        yield running


@pytest.fixture
def api(server: MockServer, registry: SchemaRegistry) -> Iterator[Api]:
    """A validating client on a freshly reset server; server-side errors fail the test."""
    server.service.reset()
    yield Api(server.url, registry)
    server.check()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print what the Schemathesis run checked (operations, examples, stateful steps)."""
    tally = config.stash.get(TALLY, None)
    if tally is not None:
        for line in tally.summary():
            terminalreporter.write_line(line)
