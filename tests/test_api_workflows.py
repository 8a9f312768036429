"""Conformance: workflows, handoffs, budgets and the workflow kill (PROTOCOL.md §3.11–§3.16)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vesanor_mock.config import Settings
from vesanor_mock.domain.contracts import compiled_hash
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .test_api_cycle import call, commit, cycle, start

OTHER_KEY = "vsk_test_other"
START = "2026-01-01T00:00:00.000Z"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """Two tenants, so workflows can be shown to stay inside theirs."""
    settings = Settings(port=0, api_keys={"vsk_test_default": "default", OTHER_KEY: "other"})
    with MockServer(settings) as running:
        yield running


# -- helpers ------------------------------------------------------------------------------


def role_contract(agent: str, tool: str, **tool_fields: Any) -> dict[str, Any]:
    """A small compiled_session: phases working -> done, one tool that advances to done."""
    return {
        "schema_version": "1.0",
        "agent": agent,
        "phases": [{"name": "working", "initial": True}, {"name": "done", "terminal": True}],
        "transitions": {"working": ["done"], "done": []},
        "tools": {
            tool: {
                "tool": tool,
                "side_effect": "read",
                "evidence_class": "local_transaction",
                "commit_requirement": "none",
                "transitions": {"advances_to": "done"},
                **tool_fields,
            }
        },
    }


def compiled_workflow(**limits: Any) -> dict[str, Any]:
    """Orchestrator -> researcher -> writer, with a contract per role."""
    workflow: dict[str, Any] = {
        "schema_version": "1.0",
        "workflow": "report",
        "roles": [
            {"name": "orchestrator", "session_contract": role_contract("orch", "plan_work")},
            {"name": "researcher", "session_contract": role_contract("res", "web_search")},
            {
                "name": "writer",
                "session_contract": role_contract(
                    "wri", "write_draft", side_effect="write", commit_requirement="acknowledged"
                ),
            },
        ],
        "handoffs": [
            {"from": "orchestrator", "to": "researcher"},
            {"from": "orchestrator", "to": "writer"},
            {"from": "researcher", "to": "writer"},
        ],
    }
    if limits:
        workflow["limits"] = limits
    return workflow


def root(api: Api, **fields: Any) -> tuple[str, int, str]:
    """Create an orchestrator root session; answer its id, fence token and workflow id."""
    workflow = {"type": "root", "role": "orchestrator", "compiled_workflow": compiled_workflow()}
    workflow.update(fields.pop("workflow", {}))
    response = api.create_session(agent="orchestrator", workflow=workflow, **fields)
    assert response.status_code == 201, response.text
    body = response.json()
    session = body["session"]
    return session["session_id"], body["lease"]["fence_token"], session["workflow"]["workflow_id"]


def child(api: Api, wid: str, role: str, **workflow: Any) -> tuple[str, int]:
    """Create a child session in a role; answer its id and fence token."""
    response = join(api, wid, role, **workflow)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["session"]["session_id"], body["lease"]["fence_token"]


def join(api: Api, wid: str, role: str, session_id: str | None = None, **workflow: Any) -> Any:
    """POST a child creation; answer the raw response."""
    extra = {"session_id": session_id} if session_id else {}
    field = {"type": "child", "workflow_id": wid, "role": role, **workflow}
    return api.create_session(agent=role, workflow=field, **extra)


def offer(api: Api, sid: str, fence: int, to_role: str, **body: Any) -> dict[str, Any]:
    """Offer a handoff; answer the handoff."""
    response = api.offer_handoff(sid, to_role=to_role, fence_token=fence, **body)
    assert response.status_code == 201, response.text
    return dict(response.json()["handoff"])


def workflow_of(api: Api, wid: str) -> dict[str, Any]:
    """The workflow as GET answers it."""
    response = api.get_workflow(wid)
    assert response.status_code == 200, response.text
    return dict(response.json()["workflow"])


def handoff_in(api: Api, wid: str, hid: str) -> dict[str, Any]:
    """One handoff as the workflow shows it."""
    return next(h for h in workflow_of(api, wid)["handoffs"] if h["handoff_id"] == hid)


def version(api: Api, sid: str) -> int:
    """A session's current state_version."""
    return int(api.get_session(sid).json()["session"]["state_version"])


# -- creating workflows -------------------------------------------------------------------


def test_a_root_session_creates_the_workflow_with_its_roles_handoffs_and_budget(
    api: Api,
) -> None:
    sid, _, wid = root(api)
    assert wid.startswith("wf_")
    session = api.get_session(sid).json()["session"]
    assert session["workflow"] == {
        "workflow_id": wid,
        "role": "orchestrator",
        "type": "root",
        "parent_session_id": None,
        "handoff_id": None,
    }
    workflow = workflow_of(api, wid)
    assert workflow["name"] == "report"
    assert workflow["status"] == "active"
    assert workflow["root_session_id"] == sid
    assert [r["name"] for r in workflow["roles"]] == ["orchestrator", "researcher", "writer"]
    assert workflow["roles"][0]["session_contract"] == role_contract("orch", "plan_work")
    assert workflow["allowed_handoffs"][0] == {"from": "orchestrator", "to": "researcher"}
    assert workflow["sessions"] == [
        {"session_id": sid, "role": "orchestrator", "type": "root", "status": "active"}
    ]
    assert workflow["handoffs"] == []
    assert workflow["budget"] == {"max_cost_usd": None, "cost_used_usd": 0.0}
    assert workflow["created_at"] == START
    assert workflow["killed"] is None


def test_a_client_chosen_workflow_id_is_used_and_a_second_root_with_it_is_workflow_exists(
    api: Api,
) -> None:
    _, _, wid = root(api, workflow={"workflow_id": "wf-report-1"})
    assert wid == "wf-report-1"
    again = api.create_session(
        session_id="second-root",
        agent="orchestrator",
        workflow={
            "type": "root",
            "workflow_id": wid,
            "role": "orchestrator",
            "compiled_workflow": compiled_workflow(),
        },
    )
    assert again.status_code == 409
    assert error_code(again) == "WORKFLOW_EXISTS"
    assert error_code(api.get_session("second-root")) == "SESSION_NOT_FOUND"
    assert len(workflow_of(api, wid)["sessions"]) == 1


def test_loading_a_workflow_refuses_unknown_query_parameters(api: Api) -> None:
    _, _, wid = root(api)
    response = api.call("get_workflow", "GET", f"/replay/workflows/{wid}", params={"x": "1"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/x"


def test_a_root_in_a_role_the_workflow_does_not_declare_is_unknown_role_and_creates_nothing(
    api: Api,
) -> None:
    response = api.create_session(
        session_id="lost-root",
        agent="orchestrator",
        workflow={
            "type": "root",
            "workflow_id": "wf-never",
            "role": "editor",
            "compiled_workflow": compiled_workflow(),
        },
    )
    assert response.status_code == 422
    assert error_code(response) == "UNKNOWN_ROLE"
    assert response.json()["error"]["details"]["roles"] == ["orchestrator", "researcher", "writer"]
    assert error_code(api.get_workflow("wf-never")) == "WORKFLOW_NOT_FOUND"
    assert error_code(api.get_session("lost-root")) == "SESSION_NOT_FOUND"


def test_a_compiled_workflow_with_undeclared_or_duplicate_roles_is_a_compile_error(
    api: Api,
) -> None:
    broken = compiled_workflow()
    broken["roles"].append({"name": "writer"})
    broken["roles"][1]["session_contract"] = {"schema_version": "2.0"}
    broken["handoffs"].append({"from": "writer", "to": "editor"})
    response = api.create_session(
        agent="orchestrator",
        workflow={"type": "root", "role": "orchestrator", "compiled_workflow": broken},
    )
    assert response.status_code == 422
    assert error_code(response) == "COMPILE_ERROR"
    errors = response.json()["error"]["details"]["errors"]
    paths = [e["path"] for e in errors]
    assert "/roles/3/name" in paths
    assert "/roles/1/session_contract/schema_version" in paths
    assert "/handoffs/3/to" in paths
    assert all(e["reason_code"] == "replay_compile_error" for e in errors)


def test_root_and_child_refuse_the_fields_of_the_other_kind(api: Api) -> None:
    _, _, wid = root(api)
    as_root = api.create_session(
        agent="orchestrator",
        workflow={
            "type": "root",
            "role": "orchestrator",
            "compiled_workflow": compiled_workflow(),
            "handoff_id": "hof_1",
        },
    )
    assert error_code(as_root) == "VALIDATION_FAILED"
    assert as_root.json()["error"]["details"]["errors"][0]["path"] == "/workflow/handoff_id"
    as_child = join(api, wid, "researcher", compiled_workflow=compiled_workflow())
    assert error_code(as_child) == "VALIDATION_FAILED"
    assert as_child.json()["error"]["details"]["errors"][0]["path"] == (
        "/workflow/compiled_workflow"
    )
    assert len(workflow_of(api, wid)["sessions"]) == 1


def test_a_child_joins_in_a_declared_role_under_the_root_by_default(api: Api) -> None:
    root_id, _, wid = root(api)
    sid, _ = child(api, wid, "researcher")
    membership = api.get_session(sid).json()["session"]["workflow"]
    assert membership == {
        "workflow_id": wid,
        "role": "researcher",
        "type": "child",
        "parent_session_id": root_id,
        "handoff_id": None,
    }
    sessions = workflow_of(api, wid)["sessions"]
    assert [(s["session_id"], s["type"]) for s in sessions] == [(root_id, "root"), (sid, "child")]


def test_a_child_names_any_member_as_its_parent_but_not_a_stranger(api: Api) -> None:
    _, _, wid = root(api)
    researcher, _ = child(api, wid, "researcher")
    sid, _ = child(api, wid, "writer", parent_session_id=researcher)
    assert api.get_session(sid).json()["session"]["workflow"]["parent_session_id"] == researcher
    stranger, _ = start(api)
    response = join(api, wid, "writer", parent_session_id=stranger)
    assert error_code(response) == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["errors"][0]["path"] == (
        "/workflow/parent_session_id"
    )


def test_a_child_of_an_unknown_workflow_is_workflow_not_found(api: Api) -> None:
    response = join(api, "wf-missing", "researcher")
    assert response.status_code == 404
    assert error_code(response) == "WORKFLOW_NOT_FOUND"


def test_a_child_in_an_undeclared_role_is_unknown_role_and_creates_nothing(api: Api) -> None:
    _, _, wid = root(api)
    response = join(api, wid, "editor", session_id="editor-1")
    assert response.status_code == 422
    assert error_code(response) == "UNKNOWN_ROLE"
    assert error_code(api.get_session("editor-1")) == "SESSION_NOT_FOUND"
    assert len(workflow_of(api, wid)["sessions"]) == 1


def test_a_child_of_a_killed_workflow_is_workflow_killed(api: Api) -> None:
    _, _, wid = root(api)
    api.kill_workflow(wid, reason="done")
    response = join(api, wid, "researcher")
    assert response.status_code == 409
    assert error_code(response) == "WORKFLOW_KILLED"
    assert response.json()["error"]["details"]["killed"]["reason"] == "done"


def test_a_role_contract_governs_a_member_without_its_own_and_a_request_contract_wins(
    api: Api,
) -> None:
    _, _, wid = root(api)
    researcher = api.create_session(
        agent="researcher", workflow={"type": "child", "workflow_id": wid, "role": "researcher"}
    ).json()["session"]
    assert researcher["governance"] == {
        "attachment": "attached",
        "compiled_hash": compiled_hash(role_contract("res", "web_search")),
        "source": "request",
        "unenforced": [],
    }
    assert researcher["enforcement"] == "protective"
    assert researcher["phase"] == {"current": "working", "legal_next": ["done"]}
    own = role_contract("writer", "other_tool")
    writer = api.create_session(
        agent="writer",
        contract={"compiled_session": own},
        workflow={"type": "child", "workflow_id": wid, "role": "researcher"},
    ).json()["session"]
    assert writer["governance"]["compiled_hash"] == compiled_hash(own)


def test_max_sessions_counts_every_member_killed_ones_too_and_refuses_one_more(
    api: Api,
) -> None:
    sid, fence, wid = root(api, workflow={"compiled_workflow": compiled_workflow(max_sessions=2)})
    researcher, _ = child(api, wid, "researcher")
    api.kill(researcher)
    handoff = offer(api, sid, fence, "writer")
    response = join(api, wid, "writer", session_id="third", handoff_id=handoff["handoff_id"])
    assert response.status_code == 409
    assert error_code(response) == "RESOURCE_CONFLICT"
    assert response.json()["error"]["details"]["resource"] == "sessions"
    assert handoff_in(api, wid, handoff["handoff_id"])["status"] == "offered"
    assert error_code(api.get_session("third")) == "SESSION_NOT_FOUND"


def test_joining_a_workflow_session_again_answers_it_and_another_place_is_a_mismatch(
    api: Api,
) -> None:
    _, _, wid = root(api)
    child(api, wid, "researcher", session_id="res-1")
    again = join(api, wid, "researcher", session_id="res-1")
    assert again.status_code == 200
    assert again.json()["session"]["workflow"]["role"] == "researcher"
    elsewhere = api.create_session(
        session_id="res-1",
        agent="researcher",
        workflow={"type": "child", "workflow_id": wid, "role": "writer"},
    )
    assert elsewhere.status_code == 409
    assert error_code(elsewhere) == "SESSION_EXISTS_MISMATCH"
    assert len(workflow_of(api, wid)["sessions"]) == 2


# -- offering -----------------------------------------------------------------------------


def test_an_offer_answers_201_with_an_offered_handoff_and_leaves_the_version_alone(
    api: Api,
) -> None:
    sid, fence, wid = root(api)
    handoff = offer(
        api, sid, fence, "researcher", payload={"topic": "tides"}, resource_claims=["doc:1"]
    )
    assert handoff["handoff_id"].startswith("hof_")
    assert handoff == {
        "handoff_id": handoff["handoff_id"],
        "workflow_id": wid,
        "from_session_id": sid,
        "from_role": "orchestrator",
        "to_role": "researcher",
        "status": "offered",
        "payload": {"topic": "tides"},
        "resource_claims": ["doc:1"],
        "child_session_id": None,
        "outcome": None,
        "result": None,
        "created_at": START,
        "expires_at": None,
        "updated_at": START,
    }
    assert version(api, sid) == 0
    assert workflow_of(api, wid)["handoffs"] == [handoff]


def test_an_offer_with_a_ttl_expires_on_the_mock_clock(api: Api) -> None:
    sid, fence, _ = root(api)
    handoff = offer(api, sid, fence, "researcher", ttl_s=90.5)
    assert handoff["expires_at"] == "2026-01-01T00:01:30.500Z"


def test_an_offer_from_a_session_outside_any_workflow_is_not_in_workflow(api: Api) -> None:
    sid, fence = start(api)
    response = api.offer_handoff(sid, to_role="researcher", fence_token=fence)
    assert response.status_code == 409
    assert error_code(response) == "NOT_IN_WORKFLOW"


def test_an_offer_along_a_route_the_workflow_does_not_declare_is_handoff_not_allowed(
    api: Api,
) -> None:
    _, _, wid = root(api)
    sid, fence = child(api, wid, "writer")
    backwards = api.offer_handoff(sid, to_role="researcher", fence_token=fence)
    assert backwards.status_code == 422
    assert error_code(backwards) == "HANDOFF_NOT_ALLOWED"
    assert backwards.json()["error"]["details"]["allowed_to"] == []
    nowhere = api.offer_handoff(sid, to_role="editor", fence_token=fence)
    assert error_code(nowhere) == "HANDOFF_NOT_ALLOWED"
    assert workflow_of(api, wid)["handoffs"] == []


def test_an_offer_is_a_write_checked_for_fence_kill_and_compromise(
    api: Api, server: MockServer
) -> None:
    sid, fence, wid = root(api)
    assert error_code(api.offer_handoff("nobody", to_role="writer", fence_token=1)) == (
        "SESSION_NOT_FOUND"
    )
    wrong = api.offer_handoff(sid, to_role="writer", fence_token=fence + 1)
    assert error_code(wrong) == "FENCE_MISMATCH"
    assert wrong.json()["error"]["details"]["current_fence_token"] == fence
    server.service.world.runtime.expire_lease("default", sid)
    assert error_code(api.offer_handoff(sid, to_role="writer", fence_token=fence)) == (
        "LEASE_EXPIRED"
    )
    researcher, r_fence = child(api, wid, "researcher")
    api.report_bypass(researcher)
    compromised = api.offer_handoff(researcher, to_role="writer", fence_token=r_fence)
    assert error_code(compromised) == "SESSION_COMPROMISED"
    writer, w_fence = child(api, wid, "writer")
    api.kill(writer)
    assert error_code(api.offer_handoff(writer, to_role="writer", fence_token=w_fence)) == (
        "SESSION_KILLED"
    )
    assert workflow_of(api, wid)["handoffs"] == []


def test_a_claimed_resource_is_a_resource_conflict_until_its_handoff_closes(api: Api) -> None:
    sid, fence, wid = root(api)
    first = offer(api, sid, fence, "researcher", resource_claims=["doc:1", "db:orders"])
    clash = api.offer_handoff(
        sid, to_role="writer", fence_token=fence, resource_claims=["doc:2", "db:orders"]
    )
    assert clash.status_code == 409
    assert error_code(clash) == "RESOURCE_CONFLICT"
    assert clash.json()["error"]["details"] == {
        "resource": "db:orders",
        "handoff_id": first["handoff_id"],
    }
    api.complete_handoff(wid, first["handoff_id"])
    second = offer(api, sid, fence, "writer", resource_claims=["db:orders"])
    api.reclaim_handoff(wid, second["handoff_id"])
    offer(api, sid, fence, "researcher", resource_claims=["db:orders"])


# -- accepting ----------------------------------------------------------------------------


def test_a_child_created_with_an_offered_handoff_accepts_it(api: Api, server: MockServer) -> None:
    root_id, fence, wid = root(api)
    handoff = offer(api, root_id, fence, "researcher")
    server.service.world.clock.advance(5)
    sid, _ = child(api, wid, "researcher", handoff_id=handoff["handoff_id"])
    membership = api.get_session(sid).json()["session"]["workflow"]
    assert membership["handoff_id"] == handoff["handoff_id"]
    assert membership["parent_session_id"] == root_id
    accepted = handoff_in(api, wid, handoff["handoff_id"])
    assert accepted["status"] == "accepted"
    assert accepted["child_session_id"] == sid
    assert accepted["updated_at"] == "2026-01-01T00:00:05.000Z"


@pytest.mark.parametrize("state", ["accepted", "completed", "reclaimed", "other_role", "expired"])
def test_a_child_can_accept_only_a_live_handoff_offered_to_its_role(
    api: Api, server: MockServer, state: str
) -> None:
    root_id, fence, wid = root(api)
    handoff = offer(api, root_id, fence, "researcher", ttl_s=10)
    hid = handoff["handoff_id"]
    if state == "accepted":
        child(api, wid, "researcher", handoff_id=hid)
    elif state == "completed":
        api.complete_handoff(wid, hid)
    elif state == "reclaimed":
        api.reclaim_handoff(wid, hid)
    elif state == "expired":
        server.service.world.clock.advance(10)
    role = "writer" if state == "other_role" else "researcher"
    before = handoff_in(api, wid, hid)
    response = join(api, wid, role, session_id="late", handoff_id=hid)
    assert response.status_code == 409
    assert error_code(response) == "HANDOFF_STATE_CONFLICT"
    assert error_code(api.get_session("late")) == "SESSION_NOT_FOUND"
    assert handoff_in(api, wid, hid) == before


def test_a_child_naming_an_unknown_handoff_is_handoff_not_found(api: Api) -> None:
    _, _, wid = root(api)
    response = join(api, wid, "researcher", handoff_id="hof_missing")
    assert response.status_code == 404
    assert error_code(response) == "HANDOFF_NOT_FOUND"


# -- completing ---------------------------------------------------------------------------


def test_completing_an_accepted_handoff_records_its_outcome_and_result(api: Api) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "researcher")["handoff_id"]
    child(api, wid, "researcher", handoff_id=hid)
    response = api.complete_handoff(wid, hid, result={"sources": 3})
    assert response.status_code == 200
    done = response.json()["handoff"]
    assert (done["status"], done["outcome"], done["result"]) == (
        "completed",
        "succeeded",
        {"sources": 3},
    )


def test_an_offered_handoff_can_be_completed_directly_as_failed(api: Api) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "writer")["handoff_id"]
    done = api.complete_handoff(wid, hid, outcome="failed").json()["handoff"]
    assert (done["status"], done["outcome"], done["result"]) == ("completed", "failed", None)


def test_completing_again_with_the_same_body_answers_the_first_answer(
    api: Api, server: MockServer
) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "writer")["handoff_id"]
    first = api.complete_handoff(wid, hid, result={"ok": True}).json()
    server.service.world.clock.advance(60)
    again = api.complete_handoff(wid, hid, result={"ok": True}, outcome="succeeded")
    assert again.status_code == 200
    assert again.json() == first
    different = api.complete_handoff(wid, hid, outcome="failed")
    assert different.status_code == 409
    assert error_code(different) == "HANDOFF_STATE_CONFLICT"
    assert different.json()["error"]["details"]["status"] == "completed"


def test_a_reclaimed_handoff_cannot_be_completed(api: Api) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "writer")["handoff_id"]
    api.reclaim_handoff(wid, hid)
    response = api.complete_handoff(wid, hid)
    assert response.status_code == 409
    assert error_code(response) == "HANDOFF_STATE_CONFLICT"


def test_unknown_handoffs_and_workflows_are_not_found_on_complete_and_reclaim(
    api: Api,
) -> None:
    _, _, wid = root(api)
    for response in (api.complete_handoff(wid, "hof_x"), api.reclaim_handoff(wid, "hof_x")):
        assert response.status_code == 404
        assert error_code(response) == "HANDOFF_NOT_FOUND"
    for response in (
        api.complete_handoff("wf-none", "hof_x"),
        api.reclaim_handoff("wf-none", "hof_x"),
        api.kill_workflow("wf-none"),
        api.get_workflow("wf-none"),
    ):
        assert response.status_code == 404
        assert error_code(response) == "WORKFLOW_NOT_FOUND"


# -- reclaiming ---------------------------------------------------------------------------


def test_an_offered_handoff_is_reclaimed_and_frees_its_claims(api: Api) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "writer", resource_claims=["doc:1"])["handoff_id"]
    response = api.reclaim_handoff(wid, hid, reason="changed plans")
    assert response.status_code == 200
    assert response.json()["handoff"]["status"] == "reclaimed"
    offer(api, root_id, fence, "writer", resource_claims=["doc:1"])


def test_an_accepted_handoff_with_an_active_child_is_not_reclaimable_until_the_child_dies(
    api: Api,
) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "researcher", ttl_s=60)["handoff_id"]
    sid, _ = child(api, wid, "researcher", handoff_id=hid)
    refused = api.reclaim_handoff(wid, hid)
    assert refused.status_code == 409
    assert error_code(refused) == "HANDOFF_NOT_RECLAIMABLE"
    assert refused.json()["error"]["details"]["child_session_id"] == sid
    api.kill(sid, reason="crashed")
    reclaimed = api.reclaim_handoff(wid, hid)
    assert reclaimed.json()["handoff"]["status"] == "reclaimed"
    killed = api.get_session(sid).json()["session"]["killed"]
    assert (killed["actor"], killed["reason"]) == ("api", "crashed")


def test_an_expired_accepted_handoff_is_reclaimed_and_its_active_child_killed(
    api: Api, server: MockServer
) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "researcher", ttl_s=30)["handoff_id"]
    sid, _ = child(api, wid, "researcher", handoff_id=hid)
    server.service.world.clock.advance(29)
    assert error_code(api.reclaim_handoff(wid, hid)) == "HANDOFF_NOT_RECLAIMABLE"
    server.service.world.clock.advance(1)
    response = api.reclaim_handoff(wid, hid, reason="too slow")
    assert response.status_code == 200
    assert response.json()["handoff"]["status"] == "reclaimed"
    session = api.get_session(sid).json()["session"]
    assert session["status"] == "killed"
    assert session["state_version"] == 1
    assert session["killed"] == {
        "at": "2026-01-01T00:00:30.000Z",
        "reason": "too slow",
        "actor": "handoff_reclaim",
    }
    assert api.get_session(root_id).json()["session"]["status"] == "active"


@pytest.mark.parametrize("final", ["completed", "reclaimed"])
def test_a_handoff_in_a_final_state_cannot_be_reclaimed(api: Api, final: str) -> None:
    root_id, fence, wid = root(api)
    hid = offer(api, root_id, fence, "writer")["handoff_id"]
    if final == "completed":
        api.complete_handoff(wid, hid)
    else:
        api.reclaim_handoff(wid, hid)
    response = api.reclaim_handoff(wid, hid)
    assert response.status_code == 409
    assert error_code(response) == "HANDOFF_STATE_CONFLICT"
    assert response.json()["error"]["details"]["status"] == final


# -- killing ------------------------------------------------------------------------------


def test_killing_one_member_does_not_kill_the_others(api: Api) -> None:
    root_id, _, wid = root(api)
    researcher, _ = child(api, wid, "researcher")
    writer, _ = child(api, wid, "writer")
    api.kill(researcher)
    statuses = {s["session_id"]: s["status"] for s in workflow_of(api, wid)["sessions"]}
    assert statuses == {root_id: "active", researcher: "killed", writer: "active"}
    assert workflow_of(api, wid)["status"] == "active"


def test_a_workflow_kill_kills_every_member_once_reclaims_open_handoffs_and_is_idempotent(
    api: Api, server: MockServer
) -> None:
    root_id, fence, wid = root(api)
    done = offer(api, root_id, fence, "writer")["handoff_id"]
    api.complete_handoff(wid, done)
    open_offer = offer(api, root_id, fence, "writer", resource_claims=["doc:1"])["handoff_id"]
    accepted = offer(api, root_id, fence, "researcher")["handoff_id"]
    researcher, _ = child(api, wid, "researcher", handoff_id=accepted)
    dead, _ = child(api, wid, "writer")
    api.kill(dead, reason="own death")
    response = api.kill_workflow(wid, reason="shutdown")
    assert response.status_code == 200
    workflow = response.json()["workflow"]
    assert workflow["status"] == "killed"
    assert workflow["killed"] == {"at": START, "reason": "shutdown"}
    assert {s["status"] for s in workflow["sessions"]} == {"killed"}
    statuses = {h["handoff_id"]: h["status"] for h in workflow["handoffs"]}
    assert statuses == {done: "completed", open_offer: "reclaimed", accepted: "reclaimed"}
    for sid in (root_id, researcher):
        session = api.get_session(sid).json()["session"]
        assert session["killed"] == {"at": START, "reason": "shutdown", "actor": "workflow"}
        assert session["state_version"] == 1
    assert api.get_session(dead).json()["session"]["killed"]["actor"] == "api"
    assert version(api, dead) == 1
    server.service.world.clock.advance(10)
    again = api.kill_workflow(wid, reason="again")
    assert again.status_code == 200
    assert again.json()["workflow"] == workflow
    assert version(api, root_id) == 1


# -- budget -------------------------------------------------------------------------------


def test_a_budget_spent_by_one_child_blocks_every_members_preflight(api: Api) -> None:
    root_id, fence, wid = root(
        api, workflow={"compiled_workflow": compiled_workflow(max_cost_usd=1)}
    )
    researcher, r_fence = child(api, wid, "researcher")
    writer, w_fence = child(api, wid, "writer")
    assert api.preflight(writer, fence_token=w_fence).json()["decision"] == "allow"
    prep = api.preflight(researcher, fence_token=r_fence).json()
    api.propose(
        researcher,
        prepared_request_id=prep["prepared_request_id"],
        fence_token=r_fence,
        response={"tool_calls": []},
        usage={"cost_usd": 0.6},
    )
    assert api.preflight(root_id, fence_token=fence).json()["decision"] == "allow"
    prep = api.preflight(researcher, fence_token=r_fence).json()
    api.propose(
        researcher,
        prepared_request_id=prep["prepared_request_id"],
        fence_token=r_fence,
        response={"tool_calls": []},
        usage={"cost_usd": 0.4},
    )
    assert workflow_of(api, wid)["budget"] == {"max_cost_usd": 1.0, "cost_used_usd": 1.0}
    for sid, token in ((root_id, fence), (researcher, r_fence), (writer, w_fence)):
        answer = api.preflight(sid, fence_token=token).json()
        assert answer["decision"] == "block"
        assert answer["reasons"][0]["code"] == "session_limit_exceeded"
        assert "max_cost_usd" in answer["reasons"][0]["detail"]


def test_a_workflow_without_a_budget_never_blocks_on_cost(api: Api) -> None:
    root_id, fence, _ = root(api)
    proposal = cycle(api, root_id, fence, usage={"cost_usd": 1000.0})
    assert proposal["decision"] == "allow"
    assert api.preflight(root_id, fence_token=fence).json()["decision"] == "allow"


# -- tenants ------------------------------------------------------------------------------


def test_another_tenants_workflow_and_handoffs_are_indistinguishable_from_missing_ones(
    api: Api,
) -> None:
    root_id, fence, wid = root(api, workflow={"workflow_id": "wf-shared"})
    hid = offer(api, root_id, fence, "researcher")["handoff_id"]
    other = api.with_key(OTHER_KEY)
    theirs, missing = other.get_workflow(wid), other.get_workflow("wf-absent")
    assert theirs.status_code == missing.status_code == 404
    assert error_code(theirs) == error_code(missing) == "WORKFLOW_NOT_FOUND"
    assert theirs.json()["error"]["message"].replace(wid, "X") == missing.json()["error"][
        "message"
    ].replace("wf-absent", "X")
    for response in (
        other.complete_handoff(wid, hid),
        other.reclaim_handoff(wid, hid),
        other.kill_workflow(wid),
        join(other, wid, "researcher", handoff_id=hid),
    ):
        assert response.status_code == 404
        assert error_code(response) == "WORKFLOW_NOT_FOUND"
    assert workflow_of(api, wid)["status"] == "active"
    assert handoff_in(api, wid, hid)["status"] == "offered"
    other_root, other_fence, other_wid = root(other, workflow={"workflow_id": "wf-shared"})
    assert other_wid == "wf-shared"
    their_hid = offer(other, other_root, other_fence, "writer")["handoff_id"]
    cross = api.complete_handoff(wid, their_hid)
    assert error_code(cross) == "HANDOFF_NOT_FOUND"


# -- end to end ---------------------------------------------------------------------------


def run_tool(api: Api, sid: str, fence: int, tool: str, output: Any) -> dict[str, Any]:
    """Preflight, propose one tool call, receipt it as acknowledged success."""
    proposal = cycle(api, sid, fence, call(tool, {"q": "tides"}))
    assert proposal["decision"] == "allow", proposal
    return commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], output)


def test_an_orchestrator_researcher_writer_workflow_runs_end_to_end_and_dies_with_its_kill(
    api: Api,
) -> None:
    orch, o_fence, wid = root(api, workflow={"workflow_id": "wf-e2e"})
    assert run_tool(api, orch, o_fence, "plan_work", {"steps": 2})["committed"] is True
    research = offer(
        api, orch, o_fence, "researcher", payload={"topic": "tides"}, resource_claims=["doc:1"]
    )
    researcher, r_fence = child(api, wid, "researcher", handoff_id=research["handoff_id"])
    receipt = run_tool(api, researcher, r_fence, "web_search", {"hits": 4})
    assert receipt["committed"] is True
    assert receipt["phase"]["current"] == "done"
    blocked = cycle(api, researcher, r_fence, call("write_draft", call_id="c2"))
    assert blocked["decision"] == "block"
    assert blocked["calls"][0]["reasons"][0]["code"] == "no_contract"
    early = api.offer_handoff(
        researcher, to_role="writer", fence_token=r_fence, resource_claims=["doc:1"]
    )
    assert error_code(early) == "RESOURCE_CONFLICT"
    done = api.complete_handoff(wid, research["handoff_id"], result={"hits": 4}).json()
    assert done["handoff"]["status"] == "completed"
    writing = offer(api, researcher, r_fence, "writer", resource_claims=["doc:1"], ttl_s=600)
    assert writing["status"] == "offered"
    writer, w_fence = child(api, wid, "writer", handoff_id=writing["handoff_id"])
    assert api.get_session(writer).json()["session"]["workflow"]["parent_session_id"] == (
        researcher
    )
    assert run_tool(api, writer, w_fence, "write_draft", {"words": 900})["committed"] is True
    api.complete_handoff(wid, writing["handoff_id"], result={"draft": "d-1"})
    workflow = workflow_of(api, wid)
    assert [h["status"] for h in workflow["handoffs"]] == ["completed", "completed"]
    assert [(s["role"], s["status"]) for s in workflow["sessions"]] == [
        ("orchestrator", "active"),
        ("researcher", "active"),
        ("writer", "active"),
    ]
    killed = api.kill_workflow(wid, reason="report shipped").json()["workflow"]
    assert killed["status"] == "killed"
    for sid, fence in ((orch, o_fence), (researcher, r_fence), (writer, w_fence)):
        assert_refuses_every_write(api, sid, fence)
        assert api.get_session(sid).json()["session"]["killed"]["actor"] == "workflow"


def assert_refuses_every_write(api: Api, sid: str, fence: int) -> None:
    """Every write but labels and kill answers 409 SESSION_KILLED."""
    writes = (
        api.preflight(sid, fence_token=fence),
        api.propose(
            sid, prepared_request_id="prep_x", fence_token=fence, response={"tool_calls": []}
        ),
        api.receipt(sid, pending_call_id="pc_x", fence_token=fence, outcome="success"),
        api.tool_filter(sid, deny=["x"]),
        api.recover(sid),
        api.offer_handoff(sid, to_role="writer", fence_token=fence),
    )
    assert [error_code(r) for r in writes] == ["SESSION_KILLED"] * len(writes)


def test_a_string_session_contract_names_a_role_without_an_inline_contract(api: Api) -> None:
    workflow = compiled_workflow()
    workflow["roles"][1]["session_contract"] = "./researcher"
    _, _, wid = root(api, workflow={"compiled_workflow": workflow})
    assert workflow_of(api, wid)["roles"][1] == {
        "name": "researcher",
        "session_contract": "./researcher",
    }
    member = api.create_session(
        agent="researcher", workflow={"type": "child", "workflow_id": wid, "role": "researcher"}
    ).json()["session"]
    assert member["governance"]["source"] == "none"
