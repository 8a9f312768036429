"""What the dashboard reads, over HTTP: journal digests and filters, the event stream, the
static page, the landing page, the YAML export and the access log's new lines."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vesanor_mock.config import Settings
from vesanor_mock.http import accesslog
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from . import dashrun
from .mockctl import Control

TOKEN = "ctl_dashboard_token"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load()


@pytest.fixture(scope="module")
def demo(registry: SchemaRegistry) -> Iterator[tuple[MockServer, Control]]:
    """One server that ran the demo: a cycle, a forced block, a drop, a handoff, a kill."""
    with MockServer() as server:
        dashrun.drive(server.url)
        yield server, Control(server.url, registry)


def digests(control: Control, **params: str) -> list[dict[str, Any]]:
    return control.journal(digest="true", bodies="false", **params)


def test_a_digest_shows_each_tool_calls_decision_and_reason_codes_and_the_forced_block(
    demo: tuple[MockServer, Control],
) -> None:
    _, control = demo
    [blocked] = digests(control, rule="freeze-refunds")
    assert blocked["endpoint"] == "proposals"
    assert "request_body" not in blocked and "response_body" not in blocked
    digest = blocked["digest"]
    assert digest["decision"] == "block"
    assert digest["calls"] == [
        {
            "tool": "issue_refund",
            "decision": "block",
            "enforced": True,
            "reasons": ["refunds_frozen"],
            "pending_call_id": None,
        }
    ]
    assert digest["faults"] == ["forced-block"]
    assert (digest["state_version"], digest["phase"], digest["tenant"]) == (
        1,
        "verified",
        "default",
    )


def test_a_dropped_answer_after_commit_is_marked_as_dropped_and_after_commit(
    demo: tuple[MockServer, Control],
) -> None:
    _, control = demo
    [dropped] = digests(control, outcome="dropped")
    assert dropped["endpoint"] == "receipts" and dropped["status"] is None
    assert dropped["digest"]["faults"] == ["dropped", "after-commit"]
    assert dropped["rules_fired"] == ["lose-the-answer"]


def test_digests_show_the_handoff_and_the_workflow_role_a_child_joined_with(
    demo: tuple[MockServer, Control],
) -> None:
    _, control = demo
    [offer] = digests(control, endpoint="offer_handoff")
    handoff = offer["digest"]["handoff"]
    assert (handoff["from_role"], handoff["to_role"], handoff["status"]) == (
        "orchestrator",
        "researcher",
        "offered",
    )
    [joined] = digests(control, session_id="researcher-1")
    workflow = joined["digest"]["workflow"]
    assert workflow == {
        "workflow_id": "wf-report",
        "role": "researcher",
        "type": "child",
        "parent_session_id": "orchestrator-1",
        "handoff_id": handoff["handoff_id"],
    }


def test_a_refusal_digest_carries_its_error_code_and_message(
    demo: tuple[MockServer, Control],
) -> None:
    _, control = demo
    last = digests(control, tail="1")[0]
    assert last["status"] == 409
    assert last["digest"]["error"] == "SESSION_KILLED"
    assert "killed" in last["digest"]["error_message"]


def test_tail_keeps_the_last_entries_and_limit_the_first_after_since(
    demo: tuple[MockServer, Control],
) -> None:
    _, control = demo
    seqs = [e["seq"] for e in control.journal()]
    assert [e["seq"] for e in control.journal(tail="3")] == seqs[-3:]
    assert [e["seq"] for e in control.journal(since="4", limit="2")] == [5, 6]
    assert control.journal(tail="0") == []
    one = control.journal(since="6", limit="1")[0]
    assert one["seq"] == 7 and one["response_body"]["decision"] == "block"


def test_outcome_and_rule_filters_select_what_they_name(
    demo: tuple[MockServer, Control],
) -> None:
    _, control = demo
    entries = control.journal()
    handled = control.journal(outcome="handled")
    assert handled == [e for e in entries if e["outcome"] == "handled"]
    assert control.journal(rule="no-such-rule") == []


@pytest.mark.parametrize(
    ("params", "pointer", "wanted"),
    [
        ({"outcome": "lost"}, "/outcome", "expected one of"),
        ({"tail": "-1"}, "/tail", "non-negative integer"),
        ({"limit": "ten"}, "/limit", "non-negative integer"),
        ({"digest": "yes"}, "/digest", "expected true or false"),
        ({"bodies": "0"}, "/bodies", "expected true or false"),
    ],
)
def test_bad_journal_query_values_answer_a_clear_422(
    demo: tuple[MockServer, Control], params: dict[str, str], pointer: str, wanted: str
) -> None:
    _, control = demo
    answer = control.call("GET", "/journal", params=params)
    assert answer.status_code == 422
    [error] = answer.json()["error"]["details"]["errors"]
    assert error["path"] == pointer and wanted in error["message"]


def test_get_root_points_a_browser_to_the_dashboard_and_an_api_client_to_json(
    demo: tuple[MockServer, Control],
) -> None:
    server, _ = demo
    page = requests.get(server.url + "/", headers={"Accept": "text/html,*/*"}, timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/_mock/ui"' in page.text and 'href="/openapi.json"' in page.text
    answer = requests.get(server.url + "/", headers={"Accept": "application/json"}, timeout=5)
    info = answer.json()
    assert (info["dashboard"], info["openapi"], info["api_base"]) == (
        "/_mock/ui",
        "/openapi.json",
        "/api/v1",
    )
    assert "GET /_mock/journal" in info["control_routes"]
    assert "GET /_mock/stream" in info["control_routes"]
    assert "preflight" in info["endpoints"] and "governance_plan" in info["endpoints"]
    assert info["control_token_required"] is False
    assert answer.headers["X-Request-Id"].startswith("req_ctl_")


def test_a_browsers_favicon_and_other_paths_draw_no_api_request_ids() -> None:
    with MockServer() as server:
        for path in ("/favicon.ico", "/robots.txt", "/", "/_mock/ui"):
            answer = requests.get(server.url + path, timeout=5)
            assert answer.headers["X-Request-Id"].startswith("req_ctl_"), path
        api = requests.post(
            server.url + "/api/v1/replay/sessions",
            json={"agent": "a"},
            headers={"Authorization": f"Bearer {dashrun.KEY}"},
            timeout=5,
        )
        assert api.headers["X-Request-Id"] == "req_000001"


def test_the_dashboard_is_served_from_the_package_with_a_strict_content_policy(
    demo: tuple[MockServer, Control],
) -> None:
    server, _ = demo
    page = requests.get(server.url + "/_mock/ui", timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert '<script type="module" src="/_mock/ui/app.js">' in page.text
    script = requests.get(server.url + "/_mock/ui/app.js", timeout=5)
    assert script.headers["content-type"].startswith("text/javascript")
    assert "http://" not in script.text and "https://" not in script.text  # nothing off-site
    for name in ("nothing.js", "..%2Fcli.py", ".hidden.css"):
        missing = requests.get(server.url + "/_mock/ui/" + name, timeout=5)
        assert missing.status_code == 404, name
        assert missing.json()["error"]["code"] == "NOT_FOUND"


class Stream:
    """Reads a /_mock/stream over a plain socket in a thread, collecting its events
    (a socket can be shut down from the test while the thread is blocked reading)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = f"GET /_mock/stream HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        self.sock.sendall(request.encode())
        self.head = b""
        self.events: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self.sock.recv(65536):
                buffer += chunk
                for line in buffer.split(b"\n")[:-1]:
                    if line.startswith(b"data: "):
                        self.events.append(json.loads(line[6:]))
                    elif not self.head and line.startswith(b"HTTP/1.1"):
                        self.head = line
                    elif line.lower().startswith(b"content-type:"):
                        self.head += b"\n" + line
                buffer = buffer.rsplit(b"\n", 1)[-1]
        except OSError:
            pass
        self.ended.set()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def wait_for(self, check: Any, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if check(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no such event in {self.events}")


def test_the_stream_tells_an_open_page_about_new_requests_and_resets() -> None:
    with MockServer() as server:
        stream = Stream(server.url)
        first = stream.wait_for(lambda e: True)
        assert b"content-type: text/event-stream" in stream.head.lower()
        assert first["total"] == 0
        requests.get(server.url + "/api/v1/replay/sessions/x", timeout=5)
        stream.wait_for(lambda e: e["total"] == 1 and e["generation"] == first["generation"])
        requests.post(server.url + "/_mock/reset", timeout=5)
        stream.wait_for(lambda e: e["generation"] == first["generation"] + 1 and e["total"] == 0)
        requests.get(server.url + "/api/v1/replay/sessions/y", timeout=5)  # the new journal
        stream.wait_for(lambda e: e["generation"] == first["generation"] + 1 and e["total"] == 1)
        assert server.service.watchers == 1
    assert stream.ended.wait(5), "the stream should end when the server stops"


def test_the_stream_coalesces_a_burst_of_requests_into_few_events() -> None:
    with MockServer() as server:
        stream = Stream(server.url)
        stream.wait_for(lambda e: True)
        http = requests.Session()
        for _ in range(60):
            http.get(server.url + "/api/v1/replay/sessions/x", timeout=5)
        stream.wait_for(lambda e: e["total"] == 60)
        assert len(stream.events) < 30
        stream.close()


def test_a_closed_stream_lets_go_of_the_journal() -> None:
    with MockServer() as server:
        stream = Stream(server.url)
        stream.wait_for(lambda e: True)
        stream.close()
        requests.get(server.url + "/api/v1/replay/sessions/x", timeout=5)
        deadline = time.monotonic() + 5
        while server.service.watchers and time.monotonic() < deadline:
            requests.get(server.url + "/api/v1/replay/sessions/x", timeout=5)
            time.sleep(0.1)
        assert server.service.watchers == 0


def test_with_a_control_token_the_stream_needs_it() -> None:
    with MockServer(Settings(port=0, control_token=TOKEN)) as server:
        refused = requests.get(server.url + "/_mock/stream", timeout=5)  # refused: no stream
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        stream = Stream(server.url, headers={"Authorization": f"Bearer {TOKEN}"})
        stream.wait_for(lambda e: True)
        stream.close()
        page = requests.get(server.url + "/_mock/ui", timeout=5)
        assert page.status_code == 200  # static, no data: the page asks for the token itself


def test_the_yaml_export_is_the_file_the_export_command_writes(
    demo: tuple[MockServer, Control], tmp_path: Any
) -> None:
    from vesanor_mock.cli import main

    server, _ = demo
    target = tmp_path / "run.yaml"
    assert main(["export", "--url", server.url, "-o", str(target)]) == 0
    answer = requests.get(server.url + "/_mock/export", params={"format": "yaml"}, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/yaml")
    assert answer.text == target.read_text(encoding="utf-8")
    bad = requests.get(server.url + "/_mock/export", params={"format": "xml"}, timeout=5)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["path"] == "/format"


def test_the_access_log_names_blocked_tools_with_their_reasons_and_control_changes() -> None:
    stream = io.StringIO()
    with MockServer() as server, accesslog.configured("text", stream):
        dashrun.drive(server.url)
        requests.post(server.url + "/_mock/reset", timeout=5)
        requests.post(
            server.url + "/_mock/rules",
            json={"rules": [{"id": "late", "when": {"endpoint": "kill"}, "then": {"delay_ms": 1}}]},
            timeout=5,
        )
        requests.delete(server.url + "/_mock/rules", timeout=5)
        requests.post(server.url + "/_mock/clock/advance", json={"seconds": 30}, timeout=5)
    lines = stream.getvalue().splitlines()
    [block] = [line for line in lines if "rules=freeze-refunds" in line]
    assert "decision=block rules=freeze-refunds blocked=issue_refund:refunds_frozen" in block
    assert any("control scenario: loaded scenario dashboard-demo" in line for line in lines)
    [reset] = [line for line in lines if "control reset:" in line]
    assert "request ids restart at req_000001" in reset
    assert any("control rules: added run-time rule(s) late" in line for line in lines)
    assert any("control rules: removed 1 run-time rule(s)" in line for line in lines)
    assert any("control clock: advanced 30 s to 2026-01-01T00:00:30.000Z" in line for line in lines)
