"""Who may use the control API (issue 10, PROTOCOL.md §6.1): other machines, web pages,
cross-site "simple" requests and a token that doubles as an API key are all refused."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
import requests
from starlette.testclient import TestClient

from vesanor_mock import server as server_module
from vesanor_mock.cli import banner
from vesanor_mock.config import Settings, is_loopback
from vesanor_mock.errors import ConfigError, ScenarioError
from vesanor_mock.http.app import MockService, create_app
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .mockctl import Control, check_control_answer

SCENARIO = "scenario: from-a-web-page\n"


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Iterator[Control]:
    """The control API of the module's server, on a freshly reset world."""
    server.service.reset()
    yield Control(server.url, registry)
    server.check()


def from_peer(peer: str, token: str | None = None) -> TestClient:
    """A client whose requests come from `peer` (the ASGI scope's client address)."""
    service = MockService(Settings(control_token=token))
    return TestClient(create_app(service=service), client=(peer, 40000))


@pytest.mark.parametrize("peer", ["192.0.2.10", "10.0.0.7", "2001:db8::1", "testclient"])
def test_without_a_token_another_machine_gets_403_saying_how_to_set_one(
    peer: str, registry: SchemaRegistry
) -> None:
    with from_peer(peer) as client:
        for method, path in [("GET", "/_mock/health"), ("POST", "/_mock/reset")]:
            response = client.request(method, path)
            assert response.status_code == 403
            error = response.json()["error"]
            assert error["code"] == "CONTROL_FORBIDDEN"
            assert "--control-token" in error["message"]
            assert error["details"] == {"peer": peer}
            assert registry.validate("responses/error", response.json()) == []


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_without_a_token_loopback_peers_may_use_it(peer: str) -> None:
    with from_peer(peer) as client:
        assert client.get("/_mock/health").status_code == 200


def test_with_a_token_another_machine_may_use_it_with_the_token_only() -> None:
    with from_peer("192.0.2.10", token="ctl-secret") as client:
        assert client.get("/_mock/health").status_code == 401
        headers = {"Authorization": "Bearer ctl-secret"}
        assert client.get("/_mock/health", headers=headers).status_code == 200


def test_the_api_itself_answers_any_peer() -> None:
    with from_peer("192.0.2.10") as client:
        headers = {"Authorization": "Bearer vsk_test_default"}
        response = client.post("/api/v1/replay/sessions", json={"agent": "a"}, headers=headers)
        assert response.status_code == 201


def test_a_cross_site_simple_post_cannot_load_a_scenario(ctl: Control) -> None:
    before = ctl.state()
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "http://evil.example", "Content-Type": "text/plain"},
        {"Origin": "null", "Content-Type": "application/x-www-form-urlencoded"},
    ):
        response = ctl.call("POST", "/scenario", data=SCENARIO, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "CONTROL_FORBIDDEN"
        assert response.json()["error"]["details"]["origin"] == headers["Origin"]
    assert ctl.state() == before


def test_a_page_of_another_origin_cannot_even_read(ctl: Control) -> None:
    response = ctl.call("GET", "/state", headers={"Origin": "http://localhost:1"})
    assert response.status_code == 403


def test_the_mocks_own_origin_may_use_it(ctl: Control, server: MockServer) -> None:
    response = ctl.call("GET", "/health", headers={"Origin": server.url})
    assert response.status_code == 200


def test_a_rebound_dns_name_is_not_the_mocks_origin(ctl: Control, server: MockServer) -> None:
    host = f"attacker.example:{server.port}"
    response = ctl.call("POST", "/reset", headers={"Origin": f"http://{host}", "Host": host})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_control_write_with_a_body_needs_a_json_or_yaml_type(
    ctl: Control, content_type: str | None
) -> None:
    before = ctl.state()
    with socket.create_connection(("127.0.0.1", int(ctl.base_url.rsplit(":", 1)[1]))) as sock:
        lines = ["POST /_mock/scenario HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(SCENARIO)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n" + SCENARIO).encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 415")
    assert b"UNSUPPORTED_MEDIA_TYPE" in answer
    assert ctl.state() == before


def test_yaml_and_json_writes_and_bodiless_writes_still_work(ctl: Control) -> None:
    response = ctl.call(
        "POST", "/scenario", data=SCENARIO, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 200
    assert ctl.call("POST", "/reset").status_code == 200
    assert requests.post(ctl.base_url + "/_mock/reset", timeout=5).status_code == 200


def test_a_control_token_equal_to_an_api_key_is_refused_in_settings() -> None:
    with pytest.raises(ConfigError, match="must differ"):
        Settings(control_token="vsk_test_default")


def test_a_scenario_whose_key_equals_the_control_token_does_not_load(
    registry: SchemaRegistry,
) -> None:
    with MockServer(Settings(port=0, control_token="shared-secret")) as running:
        ctl = Control(running.url, registry, token="shared-secret")
        before = ctl.state()
        scenario = "scenario: x\ntenants: [{name: t, api_keys: [shared-secret]}]\n"
        response = ctl.call(
            "POST", "/scenario", data=scenario, headers={"Content-Type": "application/yaml"}
        )
        assert response.status_code == 422
        assert "equals the control token" in response.json()["error"]["message"]
        assert ctl.state() == before


def test_a_scenario_file_whose_key_equals_the_control_token_fails_at_start(
    tmp_path: pytest.TempPathFactory,
) -> None:
    path = tmp_path / "s.yaml"  # type: ignore[operator]
    path.write_text("scenario: x\ntenants: [{name: t, api_keys: [shared-secret]}]\n")
    with pytest.raises(ScenarioError, match="equals the control token"):
        MockService(Settings(scenario=str(path), control_token="shared-secret"))


def test_the_banner_says_the_control_api_is_loopback_only_when_bound_beyond_it() -> None:
    service = MockService(Settings(host="0.0.0.0"))
    line = [x for x in banner(service, "http://0.0.0.0:8080", False).splitlines() if "control" in x]
    assert "loopback only" in line[0] and "--control-token" in line[0]
    local = banner(MockService(Settings()), "http://127.0.0.1:8080", False)
    assert "(no token: loopback only)" in local


def test_mock_server_beyond_loopback_without_a_token_logs_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_bind = server_module.bind
    monkeypatch.setattr(server_module, "bind", lambda host, port: real_bind("127.0.0.1", 0))
    with caplog.at_level(logging.WARNING, "vesanor_mock"):
        with MockServer(host="0.0.0.0"):
            pass
        with MockServer():
            pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "answers this machine only" in warnings[0]


def test_loopback_means_127_8_and_1_and_their_mapped_form() -> None:
    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.0.2.1", "::ffff:192.0.2.1", "evil.test"]))


def test_every_control_refusal_fits_the_error_envelope(
    ctl: Control, registry: SchemaRegistry
) -> None:
    response = requests.post(
        ctl.base_url + "/_mock/reset", headers={"Origin": "http://evil.example"}, timeout=5
    )
    check_control_answer(registry, "POST", "/reset", response)
