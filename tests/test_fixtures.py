"""Every bundled scenario in fixtures/ is loaded and run, and shows the story it tells."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .mockctl import Control

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY = {"Authorization": "Bearer vsk_test_default"}
ACKED = {"kind": "local_transaction", "acknowledged": True}
Story = Callable[[Api, MockServer], None]
STORIES: dict[str, Story] = {}


def story(name: str) -> Callable[[Story], Story]:
    """Register the test of one fixture."""

    def register(run: Story) -> Story:
        STORIES[name] = run
        return run

    return register


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One server; each story loads its fixture."""
    with MockServer() as running:
        yield running


def fixture_names() -> list[str]:
    """Every scenario file in fixtures/."""
    return sorted(p.name for p in FIXTURES.glob("*.yaml"))


def test_there_are_at_least_twelve_fixtures_each_with_a_story_and_a_test() -> None:
    names = fixture_names()
    assert len(names) >= 12
    assert sorted(STORIES) == names
    for name in names:
        first = (FIXTURES / name).read_text().splitlines()[0]
        assert first.startswith("# "), f"{name} starts with a comment telling its story"


@pytest.mark.parametrize("name", fixture_names())
def test_each_fixture_tells_its_story_and_meets_its_expectations(
    name: str, server: MockServer, registry: SchemaRegistry
) -> None:
    server.service.load_path(FIXTURES / name)
    STORIES[name](Api(server.url, registry), server)
    control = Control(server.url, registry)
    verdict = control.verify()
    assert verdict["ok"], verdict["failures"]
    assert control.call("GET", "/findings").json()["findings"] == [], "a well-behaved story"
    server.check()


# -- helpers ------------------------------------------------------------------------------------


def production(api: Api, **fields: Any) -> str:
    """Create a production refund-bot session; answer its id."""
    fields.setdefault("agent", "refund-bot")
    response = api.create_session(environment="production", **fields)
    assert response.status_code == 201, response.text
    return str(response.json()["session"]["session_id"])


def propose(api: Api, sid: str, *calls: tuple[str, dict[str, Any]], fence: int = 1) -> Any:
    """Preflight (must pass) then propose; answer the proposal body."""
    prep = api.preflight(sid, fence_token=fence)
    assert prep.status_code == 200, prep.text
    tool_calls = [{"id": f"c{i}", "name": n, "arguments": a} for i, (n, a) in enumerate(calls)]
    response = api.propose(
        sid,
        prepared_request_id=prep.json()["prepared_request_id"],
        fence_token=fence,
        response={"tool_calls": tool_calls},
    )
    assert response.status_code == 200, response.text
    return response.json()


def commit(api: Api, sid: str, pending: str, output: Any = None, fence: int = 1) -> Any:
    """An acknowledged successful receipt."""
    body = {"pending_call_id": pending, "fence_token": fence, "outcome": "success"}
    response = api.receipt(sid, evidence=ACKED, output=output or {}, **body)
    assert response.status_code == 200, response.text
    return response.json()


def verified(api: Api, sid: str) -> Any:
    """verify_customer, committed: the session reaches phase verified."""
    proposal = propose(api, sid, ("verify_customer", {"customer_id": "c-1"}))
    return commit(api, sid, proposal["calls"][0]["pending_call_id"], {"verified": True})


# -- the stories --------------------------------------------------------------------------------


@story("default.yaml")
def default(api: Api, server: MockServer) -> None:
    plan = api.plan(agent="refund-bot", environment="production").json()
    assert plan["status"] == "approved"
    assert plan["approved"]["compiled_session"]["agent"] == "refund-bot"
    session = api.create_session(environment="production").json()["session"]
    assert (session["enforcement"], session["governance"]["source"]) == ("protective", "plan")


@story("happy-path.yaml")
def happy_path(api: Api, server: MockServer) -> None:
    sid = production(api)
    assert verified(api, sid)["phase"]["current"] == "verified"
    proposal = propose(api, sid, ("issue_refund", {"amount": 120}))
    assert proposal["decision"] == "allow"
    receipt = commit(api, sid, proposal["calls"][0]["pending_call_id"])
    assert (receipt["committed"], receipt["state_version"]) == (True, 2)
    assert receipt["phase"] == {"current": "refunded", "legal_next": []}


@story("forced-block.yaml")
def forced_block(api: Api, server: MockServer) -> None:
    sid = production(api)
    verified(api, sid)
    proposal = propose(api, sid, ("issue_refund", {"amount": 10}))
    reasons = proposal["calls"][0]["reasons"]
    assert reasons == [
        {
            "code": "refunds_frozen",
            "detail": "Refunds are frozen during the quarterly audit",
            "rule_id": "freeze-refunds",
        }
    ]
    assert proposal["decision"] == "block" and proposal["calls"][0]["enforced"] is True


@story("stale-second-preflight.yaml")
def stale_second_preflight(api: Api, server: MockServer) -> None:
    sid = production(api)
    assert api.preflight(sid, fence_token=1).status_code == 200
    stale = api.preflight(sid, fence_token=1)
    assert error_code(stale) == "STALE_STATE_VERSION"
    current = stale.json()["error"]["details"]["current_state_version"]
    assert api.get_session(sid).json()["session"]["state_version"] == current
    fresh = api.preflight(sid, fence_token=1, expected_state_version=current)
    assert fresh.status_code == 200


@story("kill-after-receipt.yaml")
def kill_after_receipt(api: Api, server: MockServer) -> None:
    sid = production(api)
    verified(api, sid)
    proposal = propose(api, sid, ("issue_refund", {"amount": 50}))
    second = commit(api, sid, proposal["calls"][0]["pending_call_id"])
    assert second["committed"] is True
    response = api.preflight(sid, fence_token=1)
    assert error_code(response) == "SESSION_KILLED"
    killed = response.json()["error"]["details"]["killed"]
    assert (killed["actor"], killed["reason"]) == ("scenario", "operator pulled the plug")


@story("circuit-breaker.yaml")
def circuit_breaker(api: Api, server: MockServer) -> None:
    sid = production(api)
    for attempt in range(3):
        proposal = propose(api, sid, ("delete_account", {"customer_id": "c-1"}))
        assert proposal["decision"] == "block"
        assert proposal["calls"][0]["reasons"][0]["code"] == "risk_default_block", attempt
    assert proposal["session_status"] == "killed"  # a well-behaved client stops here
    session = api.get_session(sid).json()["session"]
    assert (session["status"], session["killed"]["actor"]) == ("killed", "circuit_breaker")


@story("lease-expiry.yaml")
def lease_expiry(api: Api, server: MockServer) -> None:
    sid = production(api)
    assert api.preflight(sid, fence_token=1).status_code == 200
    assert error_code(api.preflight(sid, fence_token=1)) == "LEASE_EXPIRED"
    lease = api.recover(sid, holder_id="worker-b").json()["lease"]
    assert (lease["fence_token"], lease["expires_at"]) == (2, "2026-01-01T00:03:00.000Z")
    assert error_code(api.tool_filter(sid, fence_token=1)) == "FENCE_MISMATCH"
    assert api.preflight(sid, fence_token=2).status_code == 200


@story("bypass-report.yaml")
def bypass_report(api: Api, server: MockServer) -> None:
    before = api.get_session("sess-bypass").json()["session"]
    assert (before["state_version"], before["phase"]["current"]) == (3, "verified")
    reported = api.report_bypass("sess-bypass", provider="openai", call_site="billing.py:88")
    session = reported.json()["session"]
    assert (session["authority_state"], session["bypass_detected"]) == ("compromised", True)
    assert session["state_version"] == 4
    # a compromised session refuses preflights, proposals and recover; a well-behaved client
    # stops proposing (docs/checks.md, write-after-compromise), so it meets it on recover
    assert error_code(api.recover("sess-bypass")) == "SESSION_COMPROMISED"
    assert api.label("sess-bypass", key="incident", value="INC-7").status_code == 201


@story("no-plan-production.yaml")
def no_plan_production(api: Api, server: MockServer) -> None:
    assert api.plan(agent="refund-bot", environment="production").json()["status"] == "no_plan"
    session = api.create_session(environment="production").json()["session"]
    assert session["governance"]["attachment"] == "no_plan"
    prep = api.preflight(session["session_id"], fence_token=1).json()
    assert prep["decision"] == "block"
    assert [r["code"] for r in prep["reasons"]] == ["no_approved_plan"]


@story("no-plan-development.yaml")
def no_plan_development(api: Api, server: MockServer) -> None:
    sid = api.create_session(agent="capture-bot").json()["session"]["session_id"]
    proposal = propose(api, sid, ("anything_goes", {}), ("delete_everything", {}))
    assert [c["decision"] for c in proposal["calls"]] == ["allow", "allow"]
    receipt = commit(api, sid, proposal["calls"][0]["pending_call_id"])
    assert receipt["committed"] is True
    assert commit(api, sid, proposal["calls"][1]["pending_call_id"])["committed"] is True


@story("invalid-artifact.yaml")
def invalid_artifact(api: Api, server: MockServer) -> None:
    response = api.plan(agent="refund-bot", environment="production")
    assert error_code(response) == "APPROVED_ARTIFACT_INVALID"
    session = api.create_session(environment="production").json()["session"]
    assert session["governance"]["attachment"] == "artifact_invalid"
    prep = api.preflight(session["session_id"], fence_token=1).json()
    assert [r["code"] for r in prep["reasons"]] == ["approved_artifact_invalid"]


@story("outage-503.yaml")
def outage_503(api: Api, server: MockServer) -> None:
    body = {"agent": "refund-bot", "environment": "production", "session_id": "retry-me"}
    statuses = []
    for _ in range(3):
        response = requests.post(
            f"{server.url}/api/v1/replay/sessions", json=body, headers=KEY, timeout=5
        )
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "1"
            assert response.json() == {"message": "upstream unavailable"}
    assert statuses == [503, 503, 201]


@story("commit-then-drop.yaml")
def commit_then_drop(api: Api, server: MockServer) -> None:
    sid = production(api)
    proposal = propose(api, sid, ("verify_customer", {}))
    pending = proposal["calls"][0]["pending_call_id"]
    body = {"pending_call_id": pending, "fence_token": 1, "outcome": "success"}
    body["output"] = {"verified": True}
    receipts = f"{server.url}/api/v1/replay/sessions/{sid}/receipts"
    with pytest.raises(requests.ConnectionError):
        requests.post(receipts, json=body, headers=KEY, timeout=5)
    assert api.get_session(sid).json()["session"]["state_version"] == 1
    retry = api.receipt(sid, **body).json()
    assert (retry["committed"], retry["state_version"]) == (True, 1)
    assert api.get_session(sid).json()["session"]["counters"]["tool_calls"] == 1


@story("malformed-answer.yaml")
def malformed_answer(api: Api, server: MockServer) -> None:
    api.create_session(session_id="garbled")
    first = requests.get(f"{server.url}/api/v1/replay/sessions/garbled", headers=KEY, timeout=5)
    with pytest.raises(requests.JSONDecodeError):
        first.json()
    assert api.get_session("garbled").json()["session"]["session_id"] == "garbled"


def role(name: str, tool: str) -> dict[str, Any]:
    """A role of the report workflow with a one-tool contract."""
    contract = {
        "schema_version": "1.0",
        "agent": name,
        "phases": [{"name": "working", "initial": True}, {"name": "done", "terminal": True}],
        "transitions": {"working": ["done"], "done": []},
        "tools": {
            tool: {
                "tool": tool,
                "side_effect": "read",
                "evidence_class": "local_transaction",
                "commit_requirement": "none",
                "transitions": {"advances_to": "done"},
            }
        },
    }
    return {"name": name, "session_contract": contract}


WORKFLOW = {
    "schema_version": "1.0",
    "workflow": "report",
    "roles": [role("orchestrator", "plan_work"), role("researcher", "web_search")],
    "handoffs": [{"from": "orchestrator", "to": "researcher"}],
}


@story("workflow-handoff-reclaim.yaml")
def workflow_handoff_reclaim(api: Api, server: MockServer) -> None:
    root = api.create_session(
        agent="orchestrator",
        workflow={"type": "root", "role": "orchestrator", "compiled_workflow": WORKFLOW},
    ).json()
    root_id, wid = root["session"]["session_id"], root["session"]["workflow"]["workflow_id"]
    offer = {"to_role": "researcher", "fence_token": 1, "resource_claims": ["topic:42"]}
    hid = api.offer_handoff(root_id, **offer).json()["handoff"]["handoff_id"]
    first = researcher(api, wid, hid)
    assert error_code(api.preflight(first, fence_token=1)) == "SESSION_KILLED"
    reclaimed = api.reclaim_handoff(wid, hid, reason="researcher crashed").json()["handoff"]
    assert reclaimed["status"] == "reclaimed"
    second_offer = api.offer_handoff(root_id, **offer)
    assert second_offer.status_code == 201, "the claim was freed by the reclaim"
    hid2 = second_offer.json()["handoff"]["handoff_id"]
    second = researcher(api, wid, hid2)
    assert api.preflight(second, fence_token=1).status_code == 200
    done = api.complete_handoff(wid, hid2, outcome="succeeded", result={"pages": 3})
    assert done.json()["handoff"]["status"] == "completed"


def researcher(api: Api, wid: str, hid: str) -> str:
    """A researcher session accepting a handoff; answer its id."""
    workflow = {"type": "child", "workflow_id": wid, "role": "researcher", "handoff_id": hid}
    response = api.create_session(agent="researcher", workflow=workflow)
    assert response.status_code == 201, response.text
    return str(response.json()["session"]["session_id"])
