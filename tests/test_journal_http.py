"""The journal over HTTP: identical on two fresh servers, bounded, and free of secrets."""

from __future__ import annotations

import contextlib
from typing import Any

import requests
import yaml

from vesanor_mock.config import Settings
from vesanor_mock.server import MockServer

from .contracts_examples import refund_contract

KEY = {"Authorization": "Bearer vsk_test_default"}

SCENARIO: dict[str, Any] = {
    "scenario": "determinism",
    "seed": 42,
    "rules": [
        {"when": {"endpoint": "preflight", "nth": 2}, "then": {"stale_state_version": True}},
        {"when": {"endpoint": "proposals", "tool": "lookup_order"}, "then": {"block": {}}},
        {
            "when": {"endpoint": "receipts", "nth": 1},
            "then": {"after_commit": {"drop_connection": True}},
        },
        {"when": {"endpoint": "get_session"}, "then": {"advance_clock_s": 1.5}},
    ],
}


def run(server: MockServer) -> list[dict[str, Any]]:
    """Load the scenario, send a fixed request sequence, answer the journal."""
    http = requests.Session()
    http.headers.update(KEY)
    loaded = http.post(
        f"{server.url}/_mock/scenario",
        data=yaml.safe_dump(SCENARIO),
        headers={"Content-Type": "application/yaml"},
        timeout=5,
    )
    assert loaded.status_code == 200, loaded.text
    base = f"{server.url}/api/v1/replay/sessions"
    created = http.post(
        base, json={"agent": "refund-bot", "contract": {"compiled_session": refund_contract()}}
    ).json()
    sid = created["session"]["session_id"]
    http.post(f"{base}/{sid}/preflight", json={"fence_token": 1})
    http.post(f"{base}/{sid}/preflight", json={"fence_token": 1})
    prep = http.post(f"{base}/{sid}/preflight", json={"fence_token": 1}).json()
    calls = [
        {"id": "a", "name": "verify_customer", "arguments": {}},
        {"id": "b", "name": "lookup_order", "arguments": {}},
    ]
    proposal = http.post(
        f"{base}/{sid}/proposals",
        json={
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": 1,
            "response": {"tool_calls": calls},
        },
    ).json()
    receipt = {
        "pending_call_id": proposal["calls"][0]["pending_call_id"],
        "fence_token": 1,
        "outcome": "success",
    }
    with contextlib.suppress(requests.ConnectionError):
        http.post(f"{base}/{sid}/receipts", json=receipt)
    http.post(f"{base}/{sid}/receipts", json=receipt)
    http.get(f"{base}/{sid}?include=pending")
    http.post(base, json={"agent": ""})
    entries = http.get(f"{server.url}/_mock/journal", timeout=5).json()["entries"]
    return [{k: v for k, v in e.items() if k != "duration_ms"} for e in entries]


def test_the_same_scenario_and_requests_on_two_fresh_servers_give_identical_journals() -> None:
    with MockServer() as one, MockServer() as two:
        first, second = run(one), run(two)
    assert first == second
    assert [e["outcome"] for e in first] == [
        "handled",
        "handled",
        "raw",
        "handled",
        "handled",
        "dropped",
        "handled",
        "handled",
        "refused",
    ]
    assert first[-2]["at"] == "2026-01-01T00:00:00.000Z"
    assert [e["request_id"] for e in first][:3] == ["req_000001", "req_000002", "req_000003"]


def test_a_long_run_keeps_only_journal_limit_entries() -> None:
    with MockServer(Settings(port=0)) as server:
        http = requests.Session()
        http.post(
            f"{server.url}/_mock/scenario",
            json={"options": {"journal_limit": 5}},
            timeout=5,
        ).raise_for_status()
        for _ in range(40):
            http.get(f"{server.url}/api/v1/governance/plan?agent=a", headers=KEY, timeout=5)
        entries = http.get(f"{server.url}/_mock/journal", timeout=5).json()["entries"]
        state = http.get(f"{server.url}/_mock/state", timeout=5).json()["journal"]
    assert [e["seq"] for e in entries] == [36, 37, 38, 39, 40]
    assert state == {"entries": 5, "limit": 5, "total": 40}
    assert entries[0]["path"] == "/api/v1/governance/plan?agent=a"


def test_an_unknown_api_path_is_journaled_as_refused_with_no_endpoint() -> None:
    with MockServer() as server:
        missing = requests.get(f"{server.url}/api/v1/nowhere", headers=KEY, timeout=5)
        wrong = requests.delete(f"{server.url}/api/v1/replay/sessions", headers=KEY, timeout=5)
        requests.get(f"{server.url}/favicon.ico", timeout=5)
        entries = requests.get(f"{server.url}/_mock/journal", timeout=5).json()["entries"]
    assert (missing.status_code, wrong.status_code) == (404, 405)
    assert [(e["endpoint"], e["status"], e["outcome"]) for e in entries] == [
        (None, 404, "refused"),
        (None, 405, "refused"),
    ]
    assert entries[0]["response_body"]["error"]["code"] == "NOT_FOUND"
