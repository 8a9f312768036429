"""Every rule effect and counting form, through HTTP with a real client (PROTOCOL.md §5)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .contracts_examples import refund_contract
from .mockctl import Control

KEY = {"Authorization": "Bearer vsk_test_default"}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One server for the module; each test loads its own scenario."""
    with MockServer() as running:
        yield running


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Iterator[Control]:
    """The control client; server-side errors fail the test."""
    yield Control(server.url, registry)
    server.check()


@pytest.fixture
def api(server: MockServer, registry: SchemaRegistry) -> Api:
    """The validating API client."""
    return Api(server.url, registry)


def rules(*items: dict[str, Any]) -> dict[str, Any]:
    """A scenario holding only these rules."""
    return {"scenario": "rules", "rules": list(items)}


def start(api: Api, **fields: Any) -> str:
    """Create a refund-bot session with an inline contract; answer its id."""
    fields.setdefault("contract", {"compiled_session": refund_contract()})
    response = api.create_session(**fields)
    assert response.status_code == 201, response.text
    return str(response.json()["session"]["session_id"])


def url(server: MockServer, sid: str, suffix: str = "") -> str:
    """The URL of a session (or one of its actions)."""
    return f"{server.url}/api/v1/replay/sessions/{sid}" + (f"/{suffix}" if suffix else "")


def propose(api: Api, sid: str, *names: str) -> requests.Response:
    """Preflight then propose calls of these tools."""
    prep = api.preflight(sid, fence_token=1).json()["prepared_request_id"]
    calls = [{"id": f"c{i}", "name": n, "arguments": {}} for i, n in enumerate(names)]
    return api.propose(sid, prepared_request_id=prep, fence_token=1, response={"tool_calls": calls})


def pending_verify(api: Api, sid: str) -> str:
    """A pending verify_customer call."""
    return str(propose(api, sid, "verify_customer").json()["calls"][0]["pending_call_id"])


RECEIPT = {"fence_token": 1, "outcome": "success", "output": {"verified": True}}


# -- effects before handling ------------------------------------------------------------------


def test_block_forces_a_block_on_the_matching_tool_with_its_code_and_rule_id(
    ctl: Control, api: Api
) -> None:
    ctl.load(
        rules(
            {
                "id": "freeze",
                "when": {"endpoint": "proposals", "tool": "lookup_order"},
                "then": {"block": {"code": "orders_frozen", "detail": "audit in progress"}},
            }
        )
    )
    sid = start(api)
    body = propose(api, sid, "verify_customer", "lookup_order").json()
    assert body["decision"] == "partial"
    allowed, blocked = body["calls"]
    assert allowed["decision"] == "allow"
    assert blocked["reasons"] == [
        {"code": "orders_frozen", "detail": "audit in progress", "rule_id": "freeze"}
    ]
    assert blocked["enforced"] is True and blocked["pending_call_id"] is None


def test_a_forced_block_without_a_code_uses_scenario_forced(ctl: Control, api: Api) -> None:
    ctl.load(rules({"when": {"endpoint": "proposals"}, "then": {"block": {}}}))
    sid = start(api)
    reasons = propose(api, sid, "verify_customer").json()["calls"][0]["reasons"]
    assert reasons[-1]["code"] == "scenario_forced" and reasons[-1]["rule_id"] == "rule-1"


def test_stale_state_version_answers_409_without_handling(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(
        rules({"when": {"endpoint": "preflight", "nth": 1}, "then": {"stale_state_version": True}})
    )
    sid = start(api)
    first = api.preflight(sid, fence_token=1)
    assert first.status_code == 409 and error_code(first) == "STALE_STATE_VERSION"
    assert first.json()["error"]["details"] == {"current_state_version": 0}
    assert api.get_session(sid).json()["session"]["counters"]["steps"] == 0
    assert api.preflight(sid, fence_token=1).status_code == 200
    assert [e["outcome"] for e in ctl.journal(endpoint="preflight")] == ["raw", "handled"]


def test_kill_session_kills_before_handling_so_the_request_sees_a_dead_session(
    ctl: Control, api: Api
) -> None:
    ctl.load(
        rules({"when": {"endpoint": "preflight"}, "then": {"kill_session": {"reason": "chaos"}}})
    )
    sid = start(api)
    response = api.preflight(sid, fence_token=1)
    assert error_code(response) == "SESSION_KILLED"
    killed = api.get_session(sid).json()["session"]["killed"]
    assert (killed["actor"], killed["reason"]) == ("scenario", "chaos")


def test_compromise_session_makes_the_request_meet_a_compromised_session(
    ctl: Control, api: Api
) -> None:
    ctl.load(rules({"when": {"endpoint": "preflight"}, "then": {"compromise_session": True}}))
    sid = start(api)
    assert error_code(api.preflight(sid, fence_token=1)) == "SESSION_COMPROMISED"
    session = api.get_session(sid).json()["session"]
    assert (session["authority_state"], session["state_version"]) == ("compromised", 1)


def test_expire_lease_answers_lease_expired_until_recover_rotates_the_fence(
    ctl: Control, api: Api
) -> None:
    ctl.load(rules({"when": {"endpoint": "preflight", "nth": 1}, "then": {"expire_lease": True}}))
    sid = start(api)
    assert error_code(api.preflight(sid, fence_token=1)) == "LEASE_EXPIRED"
    lease = api.recover(sid).json()["lease"]
    assert lease["fence_token"] == 2
    assert api.preflight(sid, fence_token=2).status_code == 200


def test_advance_clock_moves_the_virtual_clock_before_handling(ctl: Control, api: Api) -> None:
    ctl.load(rules({"when": {"endpoint": "proposals"}, "then": {"advance_clock_s": 301}}))
    sid = start(api)
    response = propose(api, sid, "verify_customer")
    assert error_code(response) == "PREPARED_REQUEST_EXPIRED"
    assert ctl.call("GET", "/clock").json()["now"] == "2026-01-01T00:05:01.000Z"


def test_respond_sends_the_scripted_status_body_and_headers(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(
        rules(
            {
                "when": {"endpoint": "create_session"},
                "then": {
                    "respond": {
                        "status": 503,
                        "body": {"message": "maintenance"},
                        "headers": {"Retry-After": "2"},
                    }
                },
            }
        )
    )
    response = requests.post(
        f"{server.url}/api/v1/replay/sessions", json={"agent": "a"}, headers=KEY, timeout=5
    )
    assert response.status_code == 503
    assert response.json() == {"message": "maintenance"}
    assert response.headers["Retry-After"] == "2"
    assert response.headers["X-Request-Id"].startswith("req_")
    assert ctl.state()["sessions"] == []


def test_respond_without_a_body_answers_empty(ctl: Control, server: MockServer) -> None:
    ctl.load(rules({"when": {"endpoint": "any"}, "then": {"respond": {"status": 204}}}))
    response = requests.get(f"{server.url}/api/v1/replay/sessions/x", headers=KEY, timeout=5)
    assert (response.status_code, response.content) == (204, b"")


def test_delay_ms_holds_the_answer_back(ctl: Control, api: Api, server: MockServer) -> None:
    ctl.load(rules({"when": {"endpoint": "get_session"}, "then": {"delay_ms": 300}}))
    sid = start(api)
    with pytest.raises(requests.ReadTimeout):
        requests.get(url(server, sid), headers=KEY, timeout=0.1)
    began = time.monotonic()
    assert requests.get(url(server, sid), headers=KEY, timeout=5).status_code == 200
    assert time.monotonic() - began >= 0.3


def test_drop_connection_closes_the_socket_without_an_answer_and_changes_nothing(
    ctl: Control, server: MockServer
) -> None:
    ctl.load(
        rules({"when": {"endpoint": "create_session", "nth": 1}, "then": {"drop_connection": True}})
    )
    with pytest.raises(requests.ConnectionError) as caught:
        requests.post(
            f"{server.url}/api/v1/replay/sessions", json={"agent": "a"}, headers=KEY, timeout=5
        )
    assert "RemoteDisconnected" in repr(caught.value) or "aborted" in repr(caught.value)
    assert ctl.state()["sessions"] == []
    entry = ctl.journal()[0]
    assert (entry["outcome"], entry["status"], entry["response_body"]) == ("dropped", None, None)
    retried = requests.post(
        f"{server.url}/api/v1/replay/sessions", json={"agent": "a"}, headers=KEY, timeout=5
    )
    assert retried.status_code == 201


def test_malformed_body_is_a_200_whose_json_does_not_parse(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(rules({"when": {"endpoint": "get_session"}, "then": {"malformed_body": True}}))
    sid = start(api)
    response = requests.get(url(server, sid), headers=KEY, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert ctl.journal(endpoint="get_session")[0]["outcome"] == "raw"


# -- after_commit -----------------------------------------------------------------------------


def test_after_commit_drop_commits_then_loses_the_answer_and_a_retry_gets_the_first_answer(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(
        rules(
            {
                "when": {"endpoint": "receipts", "nth": 1},
                "then": {"after_commit": {"drop_connection": True}},
            }
        )
    )
    sid = start(api)
    pending = pending_verify(api, sid)
    with pytest.raises(requests.ConnectionError):
        requests.post(
            url(server, sid, "receipts"), json={"pending_call_id": pending, **RECEIPT}, headers=KEY
        )
    session = api.get_session(sid).json()["session"]
    assert (session["state_version"], session["phase"]["current"]) == (1, "verified")
    retry = api.receipt(sid, pending_call_id=pending, **RECEIPT).json()
    assert (retry["committed"], retry["state_version"]) == (True, 1)
    assert api.get_session(sid).json()["session"]["state_version"] == 1
    assert [e["outcome"] for e in ctl.journal(endpoint="receipts")] == ["dropped", "handled"]


def test_after_commit_respond_replaces_the_answer_of_a_committed_request(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(
        rules(
            {
                "when": {"endpoint": "receipts"},
                "then": {"after_commit": {"respond": {"status": 503, "body": {"retry": True}}}},
            }
        )
    )
    sid = start(api)
    pending = pending_verify(api, sid)
    response = requests.post(
        url(server, sid, "receipts"), json={"pending_call_id": pending, **RECEIPT}, headers=KEY
    )
    assert (response.status_code, response.json()) == (503, {"retry": True})
    assert api.get_session(sid).json()["session"]["counters"]["tool_calls"] == 1


def test_after_commit_delay_outlasts_the_client_timeout_yet_the_change_is_committed(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(rules({"when": {"endpoint": "receipts"}, "then": {"after_commit": {"delay_ms": 400}}}))
    sid = start(api)
    pending = pending_verify(api, sid)
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            url(server, sid, "receipts"),
            json={"pending_call_id": pending, **RECEIPT},
            headers=KEY,
            timeout=0.1,
        )
    assert api.get_session(sid).json()["session"]["state_version"] == 1


def test_after_commit_malformed_body_garbles_the_answer_of_a_committed_request(
    ctl: Control, api: Api, server: MockServer
) -> None:
    ctl.load(
        rules(
            {"when": {"endpoint": "receipts"}, "then": {"after_commit": {"malformed_body": True}}}
        )
    )
    sid = start(api)
    pending = pending_verify(api, sid)
    response = requests.post(
        url(server, sid, "receipts"), json={"pending_call_id": pending, **RECEIPT}, headers=KEY
    )
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert api.get_session(sid).json()["session"]["state_version"] == 1


def test_after_commit_kill_answers_normally_then_the_session_is_dead(
    ctl: Control, api: Api
) -> None:
    ctl.load(
        rules(
            {
                "when": {"endpoint": "receipts"},
                "then": {"after_commit": {"kill_session": {"reason": "pulled"}}},
            }
        )
    )
    sid = start(api)
    pending = pending_verify(api, sid)
    answer = api.receipt(sid, pending_call_id=pending, **RECEIPT).json()
    assert (answer["committed"], answer["session_status"]) == (True, "active")
    assert error_code(api.preflight(sid, fence_token=1)) == "SESSION_KILLED"


# -- counting and filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "statuses"),
    [
        ({"nth": 2}, [200, 503, 200, 200]),
        ({"nth": [1, 3]}, [503, 200, 503, 200]),
        ({"after": 2}, [200, 200, 503, 503]),
        ({"times": 2}, [503, 503, 200, 200]),
        ({"after": 1, "times": 1}, [200, 503, 200, 200]),
    ],
)
def test_counting_forms_decide_which_requests_a_rule_fires_on(
    ctl: Control, server: MockServer, when: dict[str, Any], statuses: list[int]
) -> None:
    ctl.load(
        rules(
            {"when": {"endpoint": "governance_plan", **when}, "then": {"respond": {"status": 503}}}
        )
    )
    seen = [
        requests.get(
            f"{server.url}/api/v1/governance/plan", params={"agent": "a"}, headers=KEY, timeout=5
        ).status_code
        for _ in statuses
    ]
    assert seen == statuses


def test_filters_on_session_agent_and_tenant_pick_the_requests_a_rule_counts(
    ctl: Control, server: MockServer, registry: SchemaRegistry
) -> None:
    ctl.load(
        {
            "tenants": [
                {"name": "acme", "api_keys": ["vsk_acme"]},
                {"name": "other", "api_keys": ["vsk_other"]},
            ],
            "rules": [
                {
                    "when": {"endpoint": "get_session", "tenant": "acme", "agent": "bot", "nth": 2},
                    "then": {"respond": {"status": 418}},
                }
            ],
        }
    )
    acme, other = Api(server.url, registry, "vsk_acme"), Api(server.url, registry, "vsk_other")
    acme.create_session(session_id="s", agent="bot")
    acme.create_session(session_id="t", agent="not-bot")
    other.create_session(session_id="s", agent="bot")

    def status(client: Api, sid: str) -> int:
        headers = {"Authorization": f"Bearer {client.key}"}
        return requests.get(url(server, sid), headers=headers, timeout=5).status_code

    seen = [status(other, "s"), status(acme, "t"), status(acme, "s"), status(acme, "s")]
    assert seen == [200, 200, 200, 418]


def test_refused_requests_are_journaled_but_never_counted_by_rules(
    ctl: Control, server: MockServer
) -> None:
    ctl.load(
        rules(
            {"when": {"endpoint": "create_session", "nth": 1}, "then": {"respond": {"status": 503}}}
        )
    )
    sessions = f"{server.url}/api/v1/replay/sessions"
    unauthorized = requests.post(sessions, json={"agent": "a"}, timeout=5)
    invalid = requests.post(sessions, json={}, headers=KEY, timeout=5)
    counted = requests.post(sessions, json={"agent": "a"}, headers=KEY, timeout=5)
    assert [unauthorized.status_code, invalid.status_code, counted.status_code] == [401, 422, 503]
    entries = ctl.journal()
    assert [e["outcome"] for e in entries] == ["refused", "refused", "raw"]
    assert [e["rules_fired"] for e in entries] == [[], [], ["rule-1"]]
    assert "vsk_test_default" not in str(entries)
