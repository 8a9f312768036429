"""Record, replay and drift (PROTOCOL §9), with a second real mock as the "upstream".

The upstream is a vesanor-mock on another scenario (its own key, seed and clock, and two
planted differences: refunds are force-blocked, and the governance plan lookup answers a
raw 503). A real client (requests) runs through the recording proxy; the recording is
replayed to the same client code offline, and drift against the default mock must report
exactly the planted differences.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from vesanor_mock.config import Settings
from vesanor_mock.http.app import MockService
from vesanor_mock.http.asgicall import InProcessCaller
from vesanor_mock.http.proxy import Recorder
from vesanor_mock.recording.drift import DriftReport, drift
from vesanor_mock.recording.format import load_recording
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.scenarios.files import find_scenario
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import check_answer
from .recordclient import BODY_SECRET, CARD, QUERY_SECRET, Client, governed_cycle, whole_run

UPSTREAM_KEY = "vsk_live_upstream_secret_0042"
UPSTREAM = f"""
scenario: upstream
seed: 7
clock: {{start: "2031-05-05T10:00:00.000Z"}}
tenants:
  - name: acme
    api_keys: [{UPSTREAM_KEY}]
plans:
  - agent: refund-bot
    environment: production
    contracts_dir: {fixtures_dir() / "contracts" / "refund-bot"}
rules:
  - id: freeze-refunds
    when: {{endpoint: proposals, tool: issue_refund}}
    then:
      block: {{code: refunds_frozen, detail: Refunds are frozen}}
  - id: plan-outage
    when: {{endpoint: governance_plan, times: 1}}
    then:
      respond: {{status: 503, body: {{error: {{code: SERVICE_UNAVAILABLE, message: down}}}}}}
"""


@pytest.fixture(scope="module")
def upstream_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The upstream's scenario file."""
    path = tmp_path_factory.mktemp("upstream") / "upstream.yaml"
    path.write_text(UPSTREAM, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def upstream(upstream_scenario: Path) -> Iterator[MockServer]:
    """The stand-in for the hosted runtime: a real vesanor-mock on its own scenario."""
    with MockServer(scenario=upstream_scenario) as running:
        yield running


def record(upstream_url: str, path: Path, **options: Any) -> list[tuple[str, int, str | None]]:
    """Run the whole client through a recording proxy; answer its transcript."""
    recorder = Recorder(upstream_url, path, **options)
    with MockServer(alternate=recorder) as proxy:
        transcript = whole_run(Client(proxy.url, UPSTREAM_KEY))
        proxy.check()
    return transcript


@pytest.fixture(scope="module")
def recorded(upstream: MockServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recording of the whole client run, with /metadata/card masked."""
    upstream.service.reset()
    path = tmp_path_factory.mktemp("recorded") / "run.json"
    record(upstream.url, path, masks=["/metadata/card"])
    return path


def exchanges(path: Path) -> list[dict[str, Any]]:
    """The exchanges of a recording file, as plain JSON."""
    return list(json.loads(path.read_text(encoding="utf-8"))["exchanges"])


# -- recording ---------------------------------------------------------------------------


def test_the_proxy_answers_the_client_as_the_upstream_does(
    upstream: MockServer, tmp_path: Path
) -> None:
    upstream.service.reset()
    direct = whole_run(Client(upstream.url, UPSTREAM_KEY))
    upstream.service.reset()
    assert record(upstream.url, tmp_path / "run.json") == direct
    assert ("propose refund", 200, "block") in direct
    assert ("kill", 200, None) in direct and (
        "preflight after kill",
        409,
        "SESSION_KILLED",
    ) in direct
    assert ("complete", 200, None) in direct and ("plan", 503, "SERVICE_UNAVAILABLE") in direct


def test_every_exchange_is_written_in_order_with_placeholders_for_server_made_values(
    recorded: Path,
) -> None:
    written = exchanges(recorded)
    assert [e["seq"] for e in written] == list(range(1, len(written) + 1))
    assert [e["endpoint"] for e in written[:3]] == ["create_session", "preflight", "preflight"]
    create = written[0]
    assert create["request"]["auth"] == "{{key_1}}"
    session = create["response"]["body"]["session"]
    assert session["session_id"] == "{{sess_1}}"
    assert session["lease"] == {
        "lease_id": "{{lease_1}}",
        "fence_token": "{{fence_1}}",
        "holder_id": None,
        "expires_at": None,
    }
    assert session["created_at"] == "{{time_1}}"
    assert create["response"]["headers"] == {
        "content-type": "application/json",
        "x-request-id": "{{req_1}}",
    }
    preflight = written[1]
    assert preflight["request"]["path"] == "/api/v1/replay/sessions/{{sess_1}}/preflight"
    assert preflight["request"]["body"] == {"fence_token": "{{fence_1}}"}
    assert preflight["response"]["body"]["prepared_request_id"] == "{{prep_1}}"
    assert written[2]["response"]["body"]["prepared_request_id"] == "{{prep_2}}"


def test_an_id_inside_an_error_message_is_written_as_its_placeholder(recorded: Path) -> None:
    killed = next(
        e
        for e in exchanges(recorded)
        if e["response"]["body"].get("error", {}).get("code") == "SESSION_KILLED"
    )
    error = killed["response"]["body"]["error"]
    assert "{{sess_1}}" in error["message"] and "sess_" not in error["message"].replace(
        "{{sess_1}}", ""
    )
    assert error["request_id"] == killed["response"]["headers"]["x-request-id"]


def test_no_key_or_masked_value_used_in_the_run_appears_in_the_recording(recorded: Path) -> None:
    text = recorded.read_text(encoding="utf-8")
    for secret in (UPSTREAM_KEY, BODY_SECRET, QUERY_SECRET, CARD, "Bearer"):
        assert secret not in text
    create = exchanges(recorded)[0]["request"]["body"]["metadata"]
    assert create == {"api_key": "{{key_2}}", "card": "{{masked}}", "customer": "c-17"}
    last = exchanges(recorded)[-1]["request"]
    assert last["query"] == {"api_key": "{{key_3}}"}


def test_recording_the_same_run_twice_gives_byte_identical_files(
    upstream: MockServer, tmp_path: Path
) -> None:
    for name in ("first.json", "second.json"):
        upstream.service.reset()
        record(upstream.url, tmp_path / name, masks=["/metadata/card"])
    first = (tmp_path / "first.json").read_bytes()
    assert first == (tmp_path / "second.json").read_bytes()
    assert first.endswith(b"\n  ]\n}\n") and json.loads(first)["version"] == 1


def test_a_recording_is_readable_pretty_json_in_a_fixed_key_order(recorded: Path) -> None:
    text = recorded.read_text(encoding="utf-8")
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert list(document) == ["format", "version", "upstream", "masks", "exchanges"]
    assert list(document["exchanges"][0]) == ["seq", "endpoint", "request", "response"]
    assert list(document["exchanges"][0]["request"]) == [
        "method",
        "path",
        "auth",
        "content_type",
        "body",
    ]
    assert not SchemaRegistry.load().validate("recording", document)


# -- upstream faults ---------------------------------------------------------------------


def unused_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_request(upstream_url: str, path: Path, timeout: float = 5.0) -> requests.Response:
    """One create request through a recording proxy to `upstream_url`."""
    with MockServer(alternate=Recorder(upstream_url, path, timeout=timeout)) as proxy:
        response = requests.post(
            proxy.url + "/api/v1/replay/sessions",
            json={"agent": "refund-bot"},
            headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
            timeout=10,
        )
        journal = proxy.service.world.journal.entries()
        proxy.check()
    assert journal[-1].status == 502 and journal[-1].error == "UPSTREAM_UNAVAILABLE"
    return response


def assert_unavailable(response: requests.Response, path: Path, reason: str) -> None:
    """502 UPSTREAM_UNAVAILABLE in the envelope, to the client and in the recording."""
    assert response.status_code == 502
    check_answer(SchemaRegistry.load(), "create_session", response)
    error = response.json()["error"]
    assert error["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert reason in error["details"]["reason"] and reason in error["message"]
    written = exchanges(path)
    assert len(written) == 1
    assert written[0]["response"]["status"] == 502
    assert written[0]["response"]["body"]["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert written[0]["response"]["body"]["error"]["request_id"] == "{{req_1}}"


def test_a_stopped_upstream_is_a_recorded_502(tmp_path: Path) -> None:
    path = tmp_path / "down.json"
    response = one_request(f"http://127.0.0.1:{unused_port()}", path)
    assert_unavailable(response, path, "connection refused")


def test_an_upstream_slower_than_the_timeout_is_a_recorded_502(tmp_path: Path) -> None:
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        f"scenario: slow\ntenants: [{{name: acme, api_keys: [{UPSTREAM_KEY}]}}]\n"
        "rules:\n  - id: slow\n    when: {endpoint: any}\n    then: {delay_ms: 3000}\n",
        encoding="utf-8",
    )
    path = tmp_path / "slow.json"
    with MockServer(scenario=slow, grace=0.1) as upstream:
        response = one_request(upstream.url, path, timeout=0.3)
    assert_unavailable(response, path, "no answer within 0.3 s")


def test_an_upstream_that_does_not_speak_http_is_a_recorded_502(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def garbage() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"\x00\x01 this is not HTTP at all\r\n\r\n")

    thread = threading.Thread(target=garbage, daemon=True)
    thread.start()
    path = tmp_path / "garbage.json"
    try:
        response = one_request(f"http://127.0.0.1:{port}", path)
    finally:
        thread.join(5)
        listener.close()
    assert_unavailable(response, path, "did not answer HTTP")


def test_the_client_s_headers_go_up_and_the_upstream_s_come_back_but_not_into_the_file(
    tmp_path: Path,
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    seen: list[bytes] = []
    body = b'{"agent": "refund-bot", "status": "no_plan"}'

    def upstream() -> None:
        connection, _ = listener.accept()
        with connection:
            seen.append(connection.recv(65536))
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Trace: t-1\r\n"
                b"Set-Cookie: session=cookie-secret-99\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    path = tmp_path / "headers.json"
    try:
        with MockServer(alternate=Recorder(f"http://127.0.0.1:{port}/base", path)) as proxy:
            response = requests.get(
                proxy.url + "/api/v1/governance/plan?agent=refund-bot",
                headers={"Authorization": f"Bearer {UPSTREAM_KEY}", "X-Sdk": "node/1.2"},
                timeout=10,
            )
    finally:
        thread.join(5)
        listener.close()
    sent = seen[0].decode("latin-1").lower()
    assert sent.startswith("get /base/api/v1/governance/plan?agent=refund-bot http/1.1\r\n")
    assert f"authorization: bearer {UPSTREAM_KEY}".lower() in sent and "x-sdk: node/1.2" in sent
    assert "accept-encoding" not in sent  # the answer comes uncompressed, as it reads
    assert response.status_code == 200 and response.content == body
    assert response.headers["X-Trace"] == "t-1"
    assert response.headers["Set-Cookie"] == "session=cookie-secret-99"
    text = path.read_text(encoding="utf-8")
    assert "cookie-secret-99" not in text and "t-1" not in text and UPSTREAM_KEY not in text
    assert exchanges(path)[0]["response"]["headers"] == {"content-type": "application/json"}


# -- replay ------------------------------------------------------------------------------


def test_a_replay_answers_the_same_client_code_offline_as_the_upstream_did(
    upstream_scenario: Path, tmp_path: Path
) -> None:
    path = tmp_path / "offline.json"
    with MockServer(scenario=upstream_scenario) as upstream:
        recorded_transcript = record(upstream.url, path)
    with MockServer(replay=path) as replay:  # the upstream is gone
        replayed = whole_run(Client(replay.url, UPSTREAM_KEY))
        replay.check()
        assert replay.service.alternate is not None
        journal = replay.service.world.journal.entries()
    assert replayed == recorded_transcript
    assert not any(entry.error == "REPLAY_MISMATCH" for entry in journal)


def test_a_replay_hands_out_its_own_ids_and_takes_them_back(recorded: Path) -> None:
    with MockServer(replay=recorded) as replay:
        client = Client(replay.url, UPSTREAM_KEY)
        sid = governed_cycle(client)
        replay.check()
    assert sid.startswith("sess_") and sid not in recorded.read_text(encoding="utf-8")
    assert all(status < 400 for _, status, _ in client.transcript)


def test_a_repeated_identical_request_gets_the_next_recorded_answer(recorded: Path) -> None:
    with MockServer(replay=recorded) as replay:
        client, sid, fence = start_session(replay, recorded)
        path = f"/replay/sessions/{sid}/preflight"
        first = client.post("preflight", path, {"fence_token": fence})
        second = client.post("preflight", path, {"fence_token": fence})
    assert first["prepared_request_id"] != second["prepared_request_id"]
    assert first["prepared_request_id"].startswith("prep_")


def start_session(replay: MockServer, recorded: Path) -> tuple[Client, str, int]:
    """Replay the first exchange (create); answer the client, session id and fence."""
    client = Client(replay.url, UPSTREAM_KEY)
    body = exchanges(recorded)[0]["request"]["body"]
    body["metadata"] = {"api_key": BODY_SECRET, "card": CARD, "customer": "c-17"}
    created = client.post("create", "/replay/sessions", body)
    return client, created["session"]["session_id"], created["lease"]["fence_token"]


def test_a_request_that_differs_from_the_recording_is_a_409_replay_mismatch(
    recorded: Path, registry: SchemaRegistry
) -> None:
    with MockServer(replay=recorded) as replay:
        client, sid, fence = start_session(replay, recorded)
        path = f"/api/v1/replay/sessions/{sid}/preflight"
        response = client.http.post(
            client.base + f"/replay/sessions/{sid}/preflight",
            json={"fence_token": fence + 6},
            timeout=10,
        )
        check_answer(registry, "preflight", response)
        retried = client.post(
            "preflight", f"/replay/sessions/{sid}/preflight", {"fence_token": fence}
        )
        entries = replay.service.world.journal.entries()
        findings = requests.get(replay.url + "/_mock/findings", timeout=10).json()
        replay.check()
    assert registry.validate("control/findings", findings) == []
    assert [(f["rule"], f["severity"], f["protocol"]) for f in findings["findings"]] == [
        ("replay-mismatch", "error", "§9")
    ]
    finding = findings["findings"][0]
    assert finding["session_id"] == sid
    assert finding["request_ids"] == [response.headers["X-Request-Id"]]
    assert "first difference at /body/fence_token" in finding["message"]
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "REPLAY_MISMATCH"
    assert "exchange 2" in error["message"] and "/body/fence_token" in error["message"]
    details = error["details"]
    assert details["differences"] == [
        {"path": "/body/fence_token", "expected": fence, "received": fence + 6}
    ]
    assert details["expected"] == {
        "method": "POST",
        "path": path,
        "auth": "{{key_1}}",
        "content_type": "application/json",
        "body": {"fence_token": fence},
    }
    assert details["received"]["body"] == {"fence_token": fence + 6}
    assert retried["prepared_request_id"].startswith("prep_")  # the mismatch consumed nothing
    mismatch = entries[1]
    assert (mismatch.status, mismatch.error, mismatch.session_id) == (409, "REPLAY_MISMATCH", sid)


def test_a_mismatch_never_echoes_a_key_the_client_sent(recorded: Path) -> None:
    with MockServer(replay=recorded) as replay:
        client = Client(replay.url, UPSTREAM_KEY)
        body = {"agent": "other-bot", "metadata": {"api_key": BODY_SECRET, "card": CARD}}
        response = client.http.post(client.base + "/replay/sessions", json=body, timeout=10)
    assert response.status_code == 409
    text = response.text
    assert BODY_SECRET not in text and CARD not in text and UPSTREAM_KEY not in text
    received = response.json()["error"]["details"]["received"]
    assert received["auth"] == "{{key_1}}"
    assert received["body"]["metadata"] == {"api_key": "{{key_2}}", "card": "{{masked}}"}


def test_a_request_beyond_the_recording_is_a_replay_mismatch(recorded: Path) -> None:
    with MockServer(replay=recorded) as replay:
        client, sid, _ = start_session(replay, recorded)
        response = client.http.post(
            client.base + f"/replay/sessions/{sid}/labels", json={"key": "k"}, timeout=10
        )
        unknown = client.http.get(client.base + "/replay/sessions/sess_never", timeout=10)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "REPLAY_MISMATCH"
    assert unknown.status_code == 409
    error = unknown.json()["error"]
    assert "nothing more was recorded" in error["message"]
    assert error["details"]["expected"] is None
    assert error["details"]["differences"][0]["path"] == ""


def test_a_different_key_is_a_replay_mismatch_at_auth(recorded: Path) -> None:
    with MockServer(replay=recorded) as replay:
        response = requests.post(
            replay.url + "/api/v1/replay/sessions",
            json=exchanges(recorded)[0]["request"]["body"],
            timeout=10,
        )
    differences = response.json()["error"]["details"]["differences"]
    assert {"path": "/auth", "expected": "{{key_1}}", "received": None} in differences


def test_the_replay_position_survives_a_reset_of_the_world(recorded: Path) -> None:
    with MockServer(replay=recorded) as replay:
        client, sid, fence = start_session(replay, recorded)
        replay.service.reset()
        answer = client.post(
            "preflight", f"/replay/sessions/{sid}/preflight", {"fence_token": fence}
        )
    assert answer["prepared_request_id"].startswith("prep_")


# -- drift -------------------------------------------------------------------------------


def run_drift(path: Path, scenario: str = "default") -> DriftReport:
    """Drift of a recording against a fresh in-process mock on `scenario`."""
    service = MockService(Settings(scenario=str(find_scenario(scenario)), log_format="off"))
    caller = InProcessCaller(service)
    try:
        return drift(load_recording(path), caller.send, list(service.spec.api_keys), scenario)
    finally:
        caller.close()


def test_drift_against_the_default_mock_reports_exactly_the_planted_differences(
    recorded: Path,
) -> None:
    report = run_drift(recorded)
    endpoints = {e["seq"]: e["endpoint"] for e in exchanges(recorded)}
    found = {
        (item.exchange.seq, d.path): (d.to_dict().get("expected"), d.to_dict().get("received"))
        for item in report.drifted
        for d in item.differences
    }
    # exchange 7 proposes the refund that the upstream force-blocks
    assert endpoints[7] == "proposals"
    frozen = {"code": "refunds_frozen", "detail": "Refunds are frozen", "rule_id": "freeze-refunds"}
    assert found.pop((7, "/body/decision")) == ("block", "allow")
    assert found.pop((7, "/body/calls/0/decision")) == ("block", "allow")
    assert found.pop((7, "/body/calls/0/enforced")) == (True, False)
    assert found.pop((7, "/body/calls/0/reasons/0")) == (frozen, None)
    pending = found.pop((7, "/body/calls/0/pending_call_id"))
    assert pending[0] is None and str(pending[1]).startswith("pc_")
    # ...and what follows from it in every later view of the session: the block counted,
    # one more pending call
    assert [endpoints[n] for n in (8, 9, 10)] == ["get_session", "get_session", "kill"]
    for seq in (8, 9, 10):
        assert found.pop((seq, "/body/session/counters/consecutive_blocks")) == (1, 0)
    extra = found.pop((8, "/body/session/pending_calls/1"))
    assert extra[0] is None and extra[1]["tool_name"] == "issue_refund"
    # exchange 17: the plan outage, a status and an error code, nothing field by field
    assert endpoints[17] == "governance_plan"
    assert found.pop((17, "/status")) == (503, 200)
    assert found.pop((17, "/body/error/code")) == ("SERVICE_UNAVAILABLE", None)
    assert found == {}  # other ids, seed, clock, tenant and key: nothing else
    assert not report.ok and report.skipped == []
    assert [item.exchange.seq for item in report.drifted] == [7, 8, 9, 10, 17]


def test_drift_against_the_upstream_scenario_itself_finds_nothing(
    recorded: Path, upstream_scenario: Path
) -> None:
    report = run_drift(recorded, str(upstream_scenario))
    assert report.ok, report.text()
    assert "no drift" in report.text()


def test_drift_skips_exchanges_the_upstream_never_answered(tmp_path: Path) -> None:
    path = tmp_path / "down.json"
    one_request(f"http://127.0.0.1:{unused_port()}", path)
    report = run_drift(path)
    assert report.ok and report.skipped == [1]
    assert report.to_dict()["compared"] == 0
