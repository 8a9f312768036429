"""MockServer: ready when start() returns, stops fast, surfaces server errors in the test."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from vesanor_mock.config import Settings
from vesanor_mock.errors import ScenarioError
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.server import MockServer, ServerErrors, ServerStartError, base_url

AUTH = {"Authorization": "Bearer vsk_test_default"}


@pytest.fixture
def running() -> Iterator[MockServer]:
    """A server of its own, stopped after the test."""
    with MockServer() as server:
        yield server


def test_the_server_answers_as_soon_as_start_returns() -> None:
    server = MockServer()
    started = time.perf_counter()
    server.start()
    try:
        assert time.perf_counter() - started < 2
        assert server.running and server.port != 0
        assert requests.get(server.url + "/_mock/health", timeout=5).status_code == 200
    finally:
        server.stop()
    assert not server.running
    server.stop()  # twice is fine
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


def test_a_scenario_can_be_given_by_path_or_bundled_name() -> None:
    with MockServer(scenario=fixtures_dir() / "forced-block.yaml") as server:
        health = requests.get(server.url + "/_mock/health", timeout=5).json()
    assert health == {"status": "ok", "scenario": "forced-block"}
    loaded = MockServer(scenario="outage-503").service.scenario
    assert loaded is not None and loaded.name == "outage-503"
    with pytest.raises(ScenarioError, match="no scenario of that name"):
        MockServer(scenario="no-such-story")


def test_stop_does_not_wait_for_a_request_held_by_a_long_delay(running: MockServer) -> None:
    rule = {"when": {"endpoint": "governance_plan"}, "then": {"delay_ms": 60_000}}
    requests.post(running.url + "/_mock/rules", json={"rules": [rule]}, timeout=5)
    url = running.url + "/api/v1/governance/plan?agent=a"
    held = threading.Thread(
        target=lambda: _quietly(lambda: requests.get(url, headers=AUTH, timeout=30)), daemon=True
    )
    held.start()
    time.sleep(0.2)
    started = time.perf_counter()
    running.stop()
    assert time.perf_counter() - started < 3
    held.join(5)
    assert not held.is_alive()


def _quietly(call: Callable[[], object]) -> None:
    """Run a request whose connection the stopping server cuts."""
    with contextlib.suppress(requests.RequestException):
        call()


def test_check_raises_the_errors_of_the_server_thread_then_forgets_them(
    running: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug in the mock")

    monkeypatch.setattr(running.service.world.runtime, "governance_plan", broken)
    answer = requests.get(running.url + "/api/v1/governance/plan?agent=a", headers=AUTH, timeout=5)
    assert answer.status_code == 500
    with pytest.raises(ServerErrors, match="ZeroDivisionError: a bug in the mock"):
        running.check()
    running.check()


def test_a_taken_port_is_a_clear_error(running: MockServer) -> None:
    with pytest.raises(ServerStartError, match=f"cannot bind 127.0.0.1:{running.port}"):
        MockServer(port=running.port).start()


def test_a_given_port_and_settings_are_used() -> None:
    with MockServer(Settings(port=0, seed=3, validation="lenient")) as first:
        port = first.port
    with MockServer(Settings(port=port, validation="lenient")) as second:
        assert second.url == f"http://127.0.0.1:{port}"
        assert second.service.spec.validation == "lenient"


def test_an_ipv6_url_has_brackets() -> None:
    assert base_url("::1", 80) == "http://[::1]:80"
    assert base_url("localhost", 80) == "http://localhost:80"
