"""Hardening of the request edge (issue 10; PROTOCOL.md §1, §1.1, §6): what a client's
bytes can do to the server. Each test here failed before its fix."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vesanor_mock.config import Settings
from vesanor_mock.http.accesslog import JsonFormatter
from vesanor_mock.http.app import MockService
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import DEFAULT_KEY, Api, check_answer, error_code
from .mockctl import Control


@pytest.fixture
def ctl(api: Api, registry: SchemaRegistry) -> Control:
    """The control API of the module's server."""
    return Control(api.base_url, registry)


def raw_exchange(server: MockServer, data: bytes, *, close: bool = True) -> bytes:
    """Send bytes on a fresh connection; answer whatever comes back before it closes."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return received


def request_bytes(method: str, path: str, body: bytes, **headers: str) -> bytes:
    """An HTTP/1.1 request, byte for byte (`headers` may lie about Content-Length)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {DEFAULT_KEY}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def wait_for_entries(ctl: Control, count: int) -> list[dict[str, Any]]:
    """The journal once it holds `count` entries (the server journals after the socket)."""
    deadline = time.monotonic() + 5
    while True:
        entries = ctl.journal()
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


@pytest.fixture
def session(api: Api) -> Iterator[str]:
    """A live session `s-h`."""
    assert api.create_session(session_id="s-h").status_code == 201
    yield "s-h"


def test_a_client_that_leaves_mid_body_is_journaled_aborted_never_a_server_error(
    api: Api, server: MockServer, ctl: Control, session: str
) -> None:
    before = ctl.state()["sessions"]
    path = f"/api/v1/replay/sessions/{session}/labels"
    data = request_bytes("POST", path, b'{"key":', Content_Length="100")
    assert raw_exchange(server, data) == b""
    entries = wait_for_entries(ctl, 2)
    last = entries[-1]
    assert (last["outcome"], last["status"], last["endpoint"]) == ("aborted", None, "labels")
    assert last["request_body"] is None and last["response_body"] is None
    assert server.service.server_errors == []
    assert ctl.state()["sessions"] == before


def test_a_bad_chunk_size_is_journaled_aborted_never_a_server_error(
    api: Api, server: MockServer, ctl: Control, session: str
) -> None:
    path = f"/api/v1/replay/sessions/{session}/labels"
    data = request_bytes("POST", path, b"zz\r\n{}\r\n0\r\n\r\n", Transfer_Encoding="chunked")
    answer = raw_exchange(server, data)
    assert b"500" not in answer.split(b"\r\n", 1)[0]
    entries = wait_for_entries(ctl, 2)
    assert entries[-1]["outcome"] == "aborted"
    assert server.service.server_errors == []


def test_bytes_pipelined_after_a_short_content_length_change_nothing(
    api: Api, server: MockServer, ctl: Control, session: str
) -> None:
    body = b'{"key": "k", "value": "v"}'
    path = f"/api/v1/replay/sessions/{session}/labels"
    data = request_bytes("POST", path, body + b"this is not a request\r\n\r\n")
    data = data.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body)}\r\n\r\n".encode(), 1)
    answer = raw_exchange(server, data)
    assert answer.startswith(b"HTTP/1.1 400")  # the HTTP parser's answer: the client saw that
    entries = wait_for_entries(ctl, 2)
    assert entries[-1]["outcome"] == "aborted"
    assert entries[-1]["status"] is None
    labels = api.get_session(session).json()["session"]["labels"]
    assert labels == []
    assert server.service.server_errors == []


def test_an_exception_that_escapes_every_handler_answers_the_envelope_and_is_journaled(
    api: Api, server: MockServer, ctl: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: MockService, request: Any, op: Any) -> Any:
        raise RuntimeError("a bug outside the exchange")

    monkeypatch.setattr(MockService, "handle", broken)
    response = api.call("create_session", "POST", "/replay/sessions", {"agent": "a"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "INTERNAL_ERROR"
    assert error["request_id"] == response.headers["X-Request-Id"]
    monkeypatch.undo()
    entry = ctl.journal()[-1]
    assert (entry["request_id"], entry["status"]) == (error["request_id"], 500)
    assert "a bug outside the exchange" in server.service.server_errors[-1]
    server.service.server_errors.clear()


def test_an_answer_still_comes_in_the_envelope_when_the_journal_itself_fails(
    api: Api, server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(server.service.world.journal, "record", broken)
    response = requests.get(api.base_url + "/api/v1/nowhere", timeout=5)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert response.json()["error"]["request_id"] == response.headers["X-Request-Id"]
    assert server.service.server_errors
    server.service.server_errors.clear()


def test_a_trailing_slash_is_404_before_authentication_and_kills_nothing(
    api: Api, ctl: Control, session: str
) -> None:
    response = requests.post(
        f"{api.base_url}/api/v1/replay/sessions/{session}/kill/",
        json={"reason": "x"},
        allow_redirects=True,
        timeout=5,
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    check_answer(api.registry, "kill", response)
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert api.get_session(session).json()["session"]["status"] == "active"
    assert ctl.journal()[-2]["status"] == 404


def test_a_control_path_with_a_trailing_slash_is_404_too(api: Api) -> None:
    response = requests.post(api.base_url + "/_mock/reset/", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_two_authorization_headers_are_401_even_when_both_are_valid(
    api: Api, server: MockServer
) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    connection.putrequest("POST", "/api/v1/replay/sessions")
    connection.putheader("Authorization", f"Bearer {DEFAULT_KEY}")
    connection.putheader("Authorization", f"Bearer {DEFAULT_KEY}")
    connection.putheader("Content-Type", "application/json")
    body = b'{"agent": "a"}'
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    answer = connection.getresponse()
    payload = answer.read()
    connection.close()
    assert answer.status == 401
    assert answer.getheader("WWW-Authenticate") == "Bearer"
    assert b"UNAUTHORIZED" in payload and b"Authorization headers" in payload
    assert api.call("get_session", "GET", "/replay/sessions/x").status_code == 404


@pytest.mark.parametrize("since", ["9" * 5000, "1" * 19, "\u00b2"])
def test_a_journal_filter_too_long_or_not_ascii_is_422(ctl: Control, since: str) -> None:
    response = ctl.call("GET", "/journal", params={"since": since})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/since"


def test_the_longest_journal_filter_still_works(ctl: Control) -> None:
    response = ctl.call("GET", "/journal", params={"since": "9" * 18})
    assert response.status_code == 200 and response.json()["entries"] == []


@pytest.mark.parametrize("blank", [b" ", b" \t\r\n"])
def test_a_whitespace_only_body_is_400_not_an_empty_object(
    api: Api, session: str, blank: bytes
) -> None:
    response = api.call("kill", "POST", f"/replay/sessions/{session}/kill", data=blank)
    assert response.status_code == 400
    assert error_code(response) == "MALFORMED_JSON"
    assert api.get_session(session).json()["session"]["status"] == "active"


def test_an_empty_body_is_still_an_empty_object(api: Api, session: str) -> None:
    response = api.call("kill", "POST", f"/replay/sessions/{session}/kill", data=b"")
    assert response.status_code == 200


def test_the_journal_and_access_log_escape_control_bytes_and_mask_keys_in_the_query(
    api: Api, ctl: Control, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/api/v1/replay/sessions/x%1b%5b31m%00y"
    path += f"?access_token={DEFAULT_KEY}&other={DEFAULT_KEY}&page=2"
    with caplog.at_level(logging.INFO, "vesanor_mock.access"):
        response = requests.get(
            api.base_url + path, headers={"Authorization": f"Bearer {DEFAULT_KEY}"}, timeout=5
        )
    assert response.status_code in (404, 422)
    entry = ctl.journal()[-1]
    shown = entry["path"]
    assert "\x1b" not in shown and "\x00" not in shown and "\\x1b" in shown
    assert DEFAULT_KEY not in shown and "access_token=vsk_te" in shown and "page=2" in shown
    lines = [r.getMessage() for r in caplog.records if r.name == "vesanor_mock.access"]
    assert lines and all(line.isprintable() and DEFAULT_KEY not in line for line in lines)


def test_a_json_access_log_line_stays_printable_json() -> None:
    record = logging.LogRecord("vesanor_mock.access", logging.INFO, "", 0, "m", (), None)
    record.access = {"path": "/x\x9b31m", "session_id": "\u2028"}
    line = JsonFormatter().format(record)
    assert line.isprintable()
    assert json.loads(line)["path"] == "/x\x9b31m"


def test_a_body_held_half_sent_is_dropped_after_the_body_timeout(
    registry: SchemaRegistry,
) -> None:
    with MockServer(Settings(port=0, body_timeout_s=0.5)) as slow:
        ctl = Control(slow.url, registry)
        with socket.create_connection((slow.host, slow.port), timeout=10) as sock:
            data = request_bytes("POST", "/api/v1/replay/sessions", b'{"ag', Content_Length="64")
            sock.sendall(data)
            started = time.monotonic()
            assert sock.recv(65536) == b""  # closed by the server, nothing answered
            assert time.monotonic() - started < 5
        entries = wait_for_entries(ctl, 1)
        assert entries[-1]["outcome"] == "aborted"
        assert slow.service.server_errors == []
        ok = requests.post(
            slow.url + "/api/v1/replay/sessions",
            json={"agent": "a"},
            headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
            timeout=5,
        )
        assert ok.status_code == 201
