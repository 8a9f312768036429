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
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vesanor_mock.config import HTTP_STACKS, Settings
from vesanor_mock.server import MockServer

AUTH = {"Authorization": "Bearer vsk_test_default", "Content-Type": "application/json"}
STALL_S = 0.020  # well under the ~40 ms of a delayed ACK, well over a loopback answer
ROUNDS = 3  # a loaded machine may slow one round; a Nagle stall slows every round


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
