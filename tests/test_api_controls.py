"""Conformance: labels, tool filter, bypass reports, kill and recover (PROTOCOL.md §3.6–§3.10)."""

from __future__ import annotations

from .apiclient import Api, error_code
from .test_api_cycle import call, commit, cycle, start


def test_labels_append_with_a_per_session_sequence_and_never_change_the_version(api: Api) -> None:
    sid, _ = start(api)
    first = api.label(sid, key="customer", value="c-1", metadata={"source": "crm"})
    second = api.label(sid, key="customer", value="c-2")
    assert first.status_code == second.status_code == 201
    assert first.json()["label"]["sequence"] == 1
    assert second.json()["label"]["sequence"] == 2
    assert first.json()["label"]["system"] is False
    session = api.get_session(sid).json()["session"]
    assert [lbl["value"] for lbl in session["labels"]] == ["c-1", "c-2"]
    assert session["state_version"] == 0


def test_a_label_key_longer_than_128_characters_is_refused(api: Api) -> None:
    sid, _ = start(api)
    response = api.label(sid, key="k" * 129)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/key"


def test_the_tool_filter_replaces_the_previous_one_and_raises_the_version(api: Api) -> None:
    sid, _ = start(api)
    first = api.tool_filter(sid, allow=["verify_customer"], deny=["delete_account"]).json()
    assert first["session"]["tool_filter"] == {
        "allow": ["verify_customer"],
        "deny": ["delete_account"],
    }
    assert first["session"]["state_version"] == 1
    cleared = api.tool_filter(sid).json()["session"]
    assert cleared["tool_filter"] is None
    assert cleared["state_version"] == 2


def test_the_tool_filter_checks_a_fence_token_when_one_is_given(api: Api) -> None:
    sid, fence = start(api)
    response = api.tool_filter(sid, deny=["x"], fence_token=fence + 5)
    assert error_code(response) == "FENCE_MISMATCH"


def test_a_bypass_report_compromises_the_session_and_only_the_first_raises_the_version(
    api: Api,
) -> None:
    sid, _ = start(api)
    first = api.report_bypass(sid, provider="openai", call_site="agent.py:12").json()["session"]
    assert first["bypass_detected"] is True
    assert first["authority_state"] == "compromised"
    assert first["state_version"] == 1
    second = api.report_bypass(sid, details={"n": 2}).json()["session"]
    assert second["state_version"] == 1
    assert [(lbl["key"], lbl["system"]) for lbl in second["labels"]] == [
        ("bypass:1", True),
        ("bypass:2", True),
    ]
    assert second["labels"][0]["metadata"]["provider"] == "openai"


def test_a_compromised_session_refuses_preflight_and_proposals_but_records_receipts(
    api: Api,
) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    prep = api.preflight
    api.report_bypass(sid)
    assert error_code(prep(sid, fence_token=fence)) == "SESSION_COMPROMISED"
    refused = api.propose(
        sid, prepared_request_id="prep_x", fence_token=fence, response={"tool_calls": []}
    )
    assert error_code(refused) == "SESSION_COMPROMISED"
    assert error_code(api.recover(sid)) == "SESSION_COMPROMISED"
    answer = commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"verified": True})
    assert (answer["committed"], answer["commit_reason"]) == (False, "session_compromised")
    assert api.label(sid, key="still-works").status_code == 201
    assert api.get_session(sid).status_code == 200


def test_a_kill_is_idempotent_and_keeps_the_first_reason(api: Api) -> None:
    sid, _ = start(api)
    first = api.kill(sid, reason="operator stop").json()["session"]
    assert first["status"] == "killed"
    assert first["authority_state"] == "killed"
    assert first["killed"]["reason"] == "operator stop"
    assert first["killed"]["actor"] == "api"
    assert first["state_version"] == 1
    second = api.kill(sid, reason="again").json()["session"]
    assert second == first


def test_a_killed_session_refuses_every_write_but_labels_and_kill(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    api.kill(sid)
    refused = [
        api.preflight(sid, fence_token=fence),
        api.propose(sid, prepared_request_id="p", fence_token=fence, response={"tool_calls": []}),
        api.receipt(
            sid,
            pending_call_id=proposal["calls"][0]["pending_call_id"],
            fence_token=fence,
            outcome="success",
        ),
        api.tool_filter(sid, deny=["x"]),
        api.report_bypass(sid),
        api.recover(sid),
    ]
    assert [r.status_code for r in refused] == [409] * 6
    assert {error_code(r) for r in refused} == {"SESSION_KILLED"}
    assert api.label(sid, key="post-mortem").status_code == 201
    assert api.kill(sid).status_code == 200
    assert api.get_session(sid).status_code == 200


def test_recover_rotates_the_lease_and_lists_unresolved_calls(api: Api) -> None:
    sid, fence = start(api, holder_id="worker-a")
    proposal = cycle(api, sid, fence, call("verify_customer"))
    old = api.get_session(sid).json()["session"]["lease"]
    body = api.recover(sid, holder_id="worker-b", reason="worker-a crashed").json()
    lease = body["lease"]
    assert lease["lease_id"] != old["lease_id"]
    assert lease["fence_token"] == fence + 1
    assert lease["holder_id"] == "worker-b"
    assert body["session"]["state_version"] == 0
    pending_id = proposal["calls"][0]["pending_call_id"]
    assert body["unresolved"] == [pending_id]
    assert [p["pending_call_id"] for p in body["pending_calls"]] == [pending_id]
    assert error_code(api.preflight(sid, fence_token=fence)) == "FENCE_MISMATCH"
    commit(api, sid, fence + 1, pending_id, {"verified": True})
