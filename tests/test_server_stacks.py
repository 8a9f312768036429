"""Both server stacks answer a keep-alive client at once: TCP_NODELAY on every connection.

"auto" is httptools and uvloop (what `pip install vesanor-mock` gets where wheels exist);
"pure" is asyncio and h11, the pure-Python fallback. With Nagle's algorithm on, h11's
separate writes of an answer's head and body make every answer on a kept-alive connection
wait ~40 ms for the client's delayed ACK; these tests bound that stall, not a throughput.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vesanor_mock.cli import SERVE_OPTIONS
from vesanor_mock.config import HTTP_STACKS, Settings, resolve, settings_from
from vesanor_mock.errors import ConfigError
from vesanor_mock.server import MockServer, uvicorn_config

from .test_cli_serve import Served, start, url_of
from .test_cli_serve import served as served  # a fixture

AUTH = {"Authorization": "Bearer vsk_test_default", "Content-Type": "application/json"}
# A delayed ACK holds an answer 40 ms at least (Linux's minimum; longer elsewhere); on a
# quiet machine a loopback answer takes well under 1 ms, on a loaded one up to ~20 ms.
STALL_S = 0.035
ROUNDS = 5  # a loaded machine may slow one answer of a round; a Nagle stall slows them all


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param(
        "::1",
        marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback"),
    ),
]


@pytest.fixture(params=HTTP_STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pure_server() -> Iterator[MockServer]:
    """A server on the pure-Python stack, the way an install without wheels runs it."""
    with MockServer(Settings(port=0, http_stack="pure")) as server:
        yield server


def _timed_answers(server: MockServer, count: int) -> list[float]:
    """Seconds per answer of `count` sequential requests on one kept-alive connection."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        body = json.dumps({"agent": "notes-bot"}).encode()
        connection.request("POST", "/api/v1/replay/sessions", body=body, headers=AUTH)
        created = connection.getresponse()
        session = json.loads(created.read())["session"]["session_id"]
        assert created.status == 201
        took = []
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", f"/api/v1/replay/sessions/{session}", headers=AUTH)
            answer = connection.getresponse()
            answer.read()
            took.append(time.perf_counter() - started)
            assert answer.status == 200
            assert answer.getheader("Connection", "keep-alive").lower() != "close"
        return took
    finally:
        connection.close()


def test_a_keep_alive_client_gets_twenty_answers_without_a_delayed_ack_stall(
    stack: str,
) -> None:
    with MockServer(Settings(port=0, http_stack=stack)) as server:
        rounds = []
        for _ in range(ROUNDS):
            took = _timed_answers(server, 20)
            rounds.append(took)
            if max(took) < STALL_S:
                break
    slowest = [round(max(took) * 1000, 1) for took in rounds]
    assert min(slowest) < STALL_S * 1000, f"slowest answer per round (ms): {slowest}"


def test_the_pure_python_stack_is_asyncio_and_h11(pure_server: MockServer) -> None:
    server = pure_server._server
    assert server is not None
    assert server.config.http == "h11" and server.config.loop == "asyncio"
    with _open_connections(pure_server) as connections:
        protocols = {type(protocol).__module__ for protocol in connections}
    assert protocols == {"uvicorn.protocols.http.h11_impl"}


@contextlib.contextmanager
def _open_connections(server: MockServer) -> Iterator[list[Any]]:
    """The server's open connections (uvicorn's protocol objects) while one of ours is open."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        connection.request("GET", "/_mock/health")
        assert connection.getresponse().read()
        assert server._server is not None
        yield list(server._server.server_state.connections)
    finally:
        connection.close()


@pytest.mark.parametrize("host", HOSTS)
def test_every_accepted_connection_has_tcp_nodelay(stack: str, host: str) -> None:
    server = MockServer(Settings(port=0, http_stack=stack), host=host)
    with server, _open_connections(server) as connections:
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_auto_uses_httptools_and_uvloop_as_installed_with_the_package() -> None:
    config = uvicorn_config(object(), 1.0)
    assert (config.http, config.loop) == ("httptools", "uvloop")
    pure = uvicorn_config(object(), 1.0, "pure")
    assert (pure.http, pure.loop) == ("h11", "asyncio")


def test_auto_falls_back_to_asyncio_and_h11_where_the_wheels_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)  # `import httptools` fails
    monkeypatch.setitem(sys.modules, "uvloop", None)
    config = uvicorn_config(object(), 1.0, "auto")
    assert (config.http, config.loop) == ("h11", "asyncio")


def test_serve_takes_the_stack_from_its_flag_or_environment_and_refuses_others() -> None:
    values = resolve({}, {"VESANOR_MOCK_HTTP_STACK": "pure"}, names=SERVE_OPTIONS)
    assert settings_from(values).http_stack == "pure"
    flagged = resolve({"http_stack": "auto"}, {"VESANOR_MOCK_HTTP_STACK": "pure"})
    assert settings_from(flagged).http_stack == "auto"
    with pytest.raises(ConfigError, match="VESANOR_MOCK_HTTP_STACK: expected one of auto, pure"):
        resolve({}, {"VESANOR_MOCK_HTTP_STACK": "fast"})
    with pytest.raises(ValueError, match="http_stack must be one of"):
        Settings(http_stack="h11")


def test_a_served_pure_stack_answers_a_keep_alive_client_at_once(
    served: list[Served],
) -> None:
    process = start(served, ["--port", "0", "--log-format", "off", "--http-stack", "pure"])
    url = url_of(process.read(process.out, "listening on")[0])
    slowest = []
    with requests.Session() as client:
        for _ in range(ROUNDS):
            took = []
            for _ in range(20):
                started = time.perf_counter()
                answer = client.get(f"{url}/api/v1/governance/plan?agent=a", headers=AUTH)
                took.append(time.perf_counter() - started)
                assert answer.status_code == 200
            # a separate process competes for the CPU: allow two outliers per round; a
            # Nagle stall holds every answer, so the 18th fastest still shows it
            slowest.append(round(sorted(took)[17] * 1000, 1))
            if slowest[-1] < STALL_S * 1000:
                break
    assert min(slowest) < STALL_S * 1000, f"18th fastest of 20 per round (ms): {slowest}"
    assert process.stop() == 0


def test_the_pytest_plugin_runs_its_server_on_the_stack_it_is_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VESANOR_MOCK_HTTP_STACK", "pure")
    pytester.makepyfile(
        """
        def test_stack(vesanor_mock_server):
            assert vesanor_mock_server.settings.http_stack == "pure"
            assert vesanor_mock_server._server.config.http == "h11"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--vesanor-mock-http-stack=auto")
    result.assert_outcomes(failed=1)
