"""Conformance: preflight, proposals and receipts (PROTOCOL.md §2.2–§2.4, §3.3–§3.5, §4)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from vesanor_mock.domain.sessionops import Options
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .contracts_examples import refund_contract


def start(api: Api, contract: dict[str, Any] | None = None, **fields: Any) -> tuple[str, int]:
    """Create a session with a request contract; answer its id and fence token."""
    fields.setdefault("contract", {"compiled_session": contract or refund_contract()})
    body = api.create_session(**fields).json()
    return body["session"]["session_id"], body["lease"]["fence_token"]


def configure(server: MockServer, **options: Any) -> None:
    """Restart the server's world with other runtime options."""
    service = server.service
    service.spec = dataclasses.replace(service.spec, options=Options(**options))
    service.reset()


def call(name: str, args: dict[str, Any] | None = None, call_id: str = "c1") -> dict[str, Any]:
    """One tool call of a model response."""
    return {"id": call_id, "name": name, "arguments": args or {}}


def cycle(api: Api, sid: str, fence: int, *calls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Preflight then propose; answer the proposal's body."""
    prep = api.preflight(sid, fence_token=fence).json()
    response = api.propose(
        sid,
        prepared_request_id=prep["prepared_request_id"],
        fence_token=fence,
        response={"tool_calls": list(calls)},
        **extra,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def commit(
    api: Api, sid: str, fence: int, pending_id: str, output: Any = None, **extra: Any
) -> dict[str, Any]:
    """Receipt a successful, acknowledged call."""
    body = {"pending_call_id": pending_id, "fence_token": fence, "outcome": "success"}
    body["evidence"] = {"kind": "local_transaction", "acknowledged": True}
    if output is not None:
        body["output"] = output
    body.update(extra)
    response = api.receipt(sid, **body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def verified(api: Api, sid: str, fence: int) -> None:
    """Run verify_customer to commit, reaching phase `verified`."""
    proposal = cycle(api, sid, fence, call("verify_customer"))
    commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"verified": True})


# -- preflight ---------------------------------------------------------------------------


def test_a_preflight_binds_a_single_use_prepared_request_to_the_current_version(api: Api) -> None:
    sid, fence = start(api)
    body = api.preflight(sid, fence_token=fence, expected_state_version=0).json()
    assert body["prepared_request_id"].startswith("prep_")
    assert body["decision"] == "allow"
    assert body["state_version"] == 0
    assert body["expires_at"] == "2026-01-01T00:05:00.000Z"
    assert body["enforcement"] == "protective"
    assert api.get_session(sid).json()["session"]["counters"]["steps"] == 1


def test_a_preflight_with_an_old_expected_version_is_stale(api: Api) -> None:
    sid, fence = start(api)
    verified(api, sid, fence)
    response = api.preflight(sid, fence_token=fence, expected_state_version=0)
    assert response.status_code == 409
    assert error_code(response) == "STALE_STATE_VERSION"
    assert response.json()["error"]["details"]["current_state_version"] == 1


def test_a_preflight_with_the_wrong_fence_is_a_fence_mismatch(api: Api) -> None:
    sid, fence = start(api)
    response = api.preflight(sid, fence_token=fence + 1)
    assert response.status_code == 409
    assert error_code(response) == "FENCE_MISMATCH"
    assert response.json()["error"]["details"]["current_fence_token"] == fence


def test_a_write_after_the_lease_expired_on_the_mock_clock_is_lease_expired(
    api: Api, server: MockServer
) -> None:
    configure(server, lease_ttl_s=60)
    sid, fence = start(api)
    lease = api.get_session(sid).json()["session"]["lease"]
    assert lease["expires_at"] == "2026-01-01T00:01:00.000Z"
    server.service.world.clock.advance(61)
    response = api.preflight(sid, fence_token=fence)
    assert response.status_code == 409
    assert error_code(response) == "LEASE_EXPIRED"
    recovered = api.recover(sid, holder_id="worker-b").json()
    assert recovered["lease"]["fence_token"] == fence + 1
    assert recovered["lease"]["expires_at"] == "2026-01-01T00:02:01.000Z"
    assert api.preflight(sid, fence_token=fence + 1).status_code == 200
    configure(server)


def test_a_preflight_while_calls_wait_for_receipts_is_refused_with_their_ids(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    response = api.preflight(sid, fence_token=fence)
    assert response.status_code == 409
    assert error_code(response) == "PENDING_CALLS_UNRESOLVED"
    assert response.json()["error"]["details"]["pending_call_ids"] == [
        proposal["calls"][0]["pending_call_id"]
    ]


def test_unresolved_calls_do_not_block_preflight_when_the_option_is_off(
    api: Api, server: MockServer
) -> None:
    configure(server, require_receipts_before_preflight=False)
    sid, fence = start(api)
    cycle(api, sid, fence, call("verify_customer"))
    assert api.preflight(sid, fence_token=fence).status_code == 200
    configure(server)


def test_the_same_idempotency_key_and_body_answers_the_first_preflight_again(api: Api) -> None:
    sid, fence = start(api)
    first = api.preflight(sid, fence_token=fence, idempotency_key="k1")
    again = api.preflight(sid, fence_token=fence, idempotency_key="k1")
    assert first.json() == again.json()
    assert api.get_session(sid).json()["session"]["counters"]["steps"] == 1
    other = api.preflight(sid, fence_token=fence, idempotency_key="k1", expected_state_version=0)
    assert other.status_code == 422
    assert other.json()["error"]["details"]["errors"][0]["path"] == "/idempotency_key"


def test_an_idempotent_preflight_replay_never_revives_an_old_fence_or_a_dead_session(
    api: Api,
) -> None:
    sid, fence = start(api)
    first = api.preflight(sid, fence_token=fence, idempotency_key="k-1")
    assert first.json()["decision"] == "allow"
    api.recover(sid, holder_id="worker-b")
    replay = api.preflight(sid, fence_token=fence, idempotency_key="k-1")
    assert (replay.status_code, error_code(replay)) == (409, "FENCE_MISMATCH")
    api.kill(sid, reason="stop")
    replay = api.preflight(sid, fence_token=fence, idempotency_key="k-1")
    assert (replay.status_code, error_code(replay)) == (409, "SESSION_KILLED")


def test_an_idempotent_preflight_replay_is_refused_on_a_compromised_session(api: Api) -> None:
    sid, fence = start(api)
    assert api.preflight(sid, fence_token=fence, idempotency_key="k-1").status_code == 200
    api.report_bypass(sid, provider="openai")
    replay = api.preflight(sid, fence_token=fence, idempotency_key="k-1")
    assert (replay.status_code, error_code(replay)) == (409, "SESSION_COMPROMISED")


def test_preflight_narrows_a_tool_whose_prior_output_fails_its_with_output_check(
    api: Api,
) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"verified": "yes"})
    body = api.preflight(sid, fence_token=fence, request={"tools": ["issue_refund"]}).json()
    assert body["visible_tools"] == []
    assert body["narrowed"] == [{"tool": "issue_refund", "reason": "precondition_not_met"}]


def test_preflight_narrows_tools_with_a_reason_for_each(api: Api) -> None:
    sid, fence = start(api)
    api.tool_filter(sid, deny=["lookup_order"], fence_token=fence)
    body = api.preflight(
        sid,
        fence_token=fence,
        request={"tools": ["verify_customer", "issue_refund", "lookup_order", "mystery"]},
    ).json()
    assert body["visible_tools"] == ["verify_customer"]
    assert body["narrowed"] == [
        {"tool": "issue_refund", "reason": "wrong_phase"},
        {"tool": "lookup_order", "reason": "tool_filtered"},
        {"tool": "mystery", "reason": "no_contract"},
    ]


def test_preflight_blocks_when_max_steps_is_reached(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"max_steps": 1}
    sid, fence = start(api, contract)
    cycle(api, sid, fence)
    body = api.preflight(sid, fence_token=fence).json()
    assert body["decision"] == "block"
    assert body["reasons"][0]["code"] == "session_limit_exceeded"


def test_a_spent_cost_budget_blocks_the_next_preflight_and_calls_over_it(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"max_cost_per_session": 1.0}
    sid, fence = start(api, contract)
    over = cycle(api, sid, fence, call("lookup_order"), usage={"cost_usd": 1.5})
    assert [r["code"] for r in over["calls"][0]["reasons"]] == ["session_limit_exceeded"]
    body = api.preflight(sid, fence_token=fence).json()
    assert body["decision"] == "block"
    assert [r["code"] for r in body["reasons"]] == ["session_limit_exceeded"]


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_without_any_contract_staging_and_production_fail_closed(
    api: Api, environment: str
) -> None:
    body = api.create_session(agent="nobody-bot", environment=environment).json()
    sid, fence = body["session"]["session_id"], body["lease"]["fence_token"]
    prep = api.preflight(sid, fence_token=fence).json()
    assert prep["decision"] == "block"
    assert [r["code"] for r in prep["reasons"]] == ["no_approved_plan"]
    proposal = api.propose(
        sid,
        prepared_request_id=prep["prepared_request_id"],
        fence_token=fence,
        response={"tool_calls": [call("anything")]},
    ).json()
    assert proposal["calls"][0]["decision"] == "block"
    assert proposal["calls"][0]["enforced"] is True
    assert proposal["calls"][0]["pending_call_id"] is None


def test_without_any_contract_development_captures_everything(api: Api) -> None:
    body = api.create_session(agent="nobody-bot").json()
    sid, fence = body["session"]["session_id"], body["lease"]["fence_token"]
    proposal = cycle(api, sid, fence, call("anything", {"x": 1}))
    assert proposal["decision"] == "allow"
    assert proposal["calls"][0]["pending_call_id"].startswith("pc_")


# -- proposals ---------------------------------------------------------------------------


def test_an_allowed_proposal_registers_pending_calls_atomically(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"), call("lookup_order", call_id="c2"))
    assert proposal["decision"] == "allow"
    assert proposal["proposal_id"].startswith("prop_")
    assert [c["decision"] for c in proposal["calls"]] == ["allow", "allow"]
    pending = api.get_session(sid, include="pending").json()["session"]["pending_calls"]
    assert [p["tool_call_id"] for p in pending] == ["c1", "c2"]
    assert all(p["status"] == "pending" for p in pending)
    assert api.get_session(sid).json()["session"]["state_version"] == 0


def test_a_proposal_with_one_blocked_call_is_partial_and_the_block_has_no_pending_call(
    api: Api,
) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"), call("issue_refund", call_id="c2"))
    assert proposal["decision"] == "partial"
    blocked = proposal["calls"][1]
    assert blocked["decision"] == "block"
    assert blocked["enforced"] is True
    assert blocked["pending_call_id"] is None
    assert blocked["reasons"][0]["code"] == "wrong_phase"


def test_a_prepared_request_is_single_use(api: Api) -> None:
    sid, fence = start(api)
    prep = api.preflight(sid, fence_token=fence).json()["prepared_request_id"]
    body = {"prepared_request_id": prep, "fence_token": fence, "response": {"tool_calls": []}}
    assert api.propose(sid, **body).status_code == 200
    again = api.propose(sid, **body)
    assert again.status_code == 409
    assert error_code(again) == "PREPARED_REQUEST_CONSUMED"


def test_an_unknown_prepared_request_is_404(api: Api) -> None:
    sid, fence = start(api)
    response = api.propose(
        sid, prepared_request_id="prep_nope", fence_token=fence, response={"tool_calls": []}
    )
    assert response.status_code == 404
    assert error_code(response) == "PREPARED_REQUEST_NOT_FOUND"


def test_a_prepared_request_expires_on_the_mock_clock(api: Api, server: MockServer) -> None:
    sid, fence = start(api)
    prep = api.preflight(sid, fence_token=fence).json()["prepared_request_id"]
    server.service.world.clock.advance(300)
    response = api.propose(
        sid, prepared_request_id=prep, fence_token=fence, response={"tool_calls": []}
    )
    assert response.status_code == 409
    assert error_code(response) == "PREPARED_REQUEST_EXPIRED"


def test_a_prepared_request_is_stale_once_the_state_moved(api: Api) -> None:
    sid, fence = start(api)
    prep = api.preflight(sid, fence_token=fence).json()["prepared_request_id"]
    api.tool_filter(sid, deny=["x"])
    response = api.propose(
        sid, prepared_request_id=prep, fence_token=fence, response={"tool_calls": []}
    )
    assert response.status_code == 409
    assert error_code(response) == "STALE_STATE_VERSION"
    assert response.json()["error"]["details"]["current_state_version"] == 1


def test_duplicate_tool_call_ids_are_a_validation_error_and_change_nothing(api: Api) -> None:
    sid, fence = start(api)
    prep = api.preflight(sid, fence_token=fence).json()["prepared_request_id"]
    response = api.propose(
        sid,
        prepared_request_id=prep,
        fence_token=fence,
        response={"tool_calls": [call("lookup_order"), call("lookup_order")]},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/response/tool_calls/1/id"
    ok = api.propose(sid, prepared_request_id=prep, fence_token=fence, response={"tool_calls": []})
    assert ok.status_code == 200


def test_a_proposal_with_no_tool_calls_is_allow(api: Api) -> None:
    sid, fence = start(api)
    assert cycle(api, sid, fence)["decision"] == "allow"


def test_monitor_enforcement_reports_blocks_without_enforcing_them_and_a_shadow_delta(
    api: Api,
) -> None:
    sid, fence = start(api, enforcement="monitor")
    proposal = cycle(api, sid, fence, call("issue_refund", {"amount": 10}))
    blocked = proposal["calls"][0]
    assert blocked["decision"] == "block"
    assert blocked["enforced"] is False
    assert blocked["pending_call_id"].startswith("pc_")
    delta = proposal["shadow_delta"]
    assert delta["would_have_blocked"][0]["tool_name"] == "issue_refund"
    assert delta["would_have_blocked"][0]["reason"] == "wrong_phase"
    assert delta["current_phase"] == "start"
    assert delta["legal_next_phases"] == ["verified"]


def test_protective_enforcement_has_no_shadow_delta(api: Api) -> None:
    sid, fence = start(api)
    assert "shadow_delta" not in cycle(api, sid, fence, call("verify_customer"))


def test_usage_cost_adds_to_the_session_counters(api: Api) -> None:
    sid, fence = start(api)
    cycle(api, sid, fence, usage={"cost_usd": 0.25})
    cycle(api, sid, fence, usage={"cost_usd": 0.5})
    assert api.get_session(sid).json()["session"]["counters"]["cost_usd"] == 0.75


def test_consecutive_enforced_blocks_trip_the_circuit_breaker(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"circuit_breaker": {"consecutive_blocks": 2}}
    sid, fence = start(api, contract)
    first = cycle(api, sid, fence, call("delete_account"))
    assert api.get_session(sid).json()["session"]["counters"]["consecutive_blocks"] == 1
    assert first["state_version"] == 0
    second = cycle(api, sid, fence, call("delete_account"))
    assert second["state_version"] == 1
    session = api.get_session(sid).json()["session"]
    assert session["status"] == "killed"
    assert session["killed"]["actor"] == "circuit_breaker"
    assert error_code(api.preflight(sid, fence_token=fence)) == "SESSION_KILLED"


def test_a_proposal_that_trips_the_circuit_breaker_hands_out_no_pending_call(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"circuit_breaker": {"consecutive_blocks": 1}}
    sid, fence = start(api, contract)
    answer = cycle(api, sid, fence, call("lookup_order", call_id="c1"), call("nope", call_id="c2"))
    assert answer["session_status"] == "killed"
    assert answer["decision"] == "block"
    ok, nope = answer["calls"]
    assert (ok["decision"], ok["enforced"], ok["pending_call_id"]) == ("block", True, None)
    assert [r["code"] for r in ok["reasons"]] == ["session_killed"]
    assert [r["code"] for r in nope["reasons"]] == ["no_contract"]
    session = api.get_session(sid, include="pending").json()["session"]
    assert session["pending_calls"] == []
    assert (session["killed"]["actor"], session["state_version"]) == ("circuit_breaker", 1)


def test_every_proposal_answer_says_the_session_status(api: Api) -> None:
    sid, fence = start(api)
    assert cycle(api, sid, fence, call("lookup_order"))["session_status"] == "active"


def test_checkpoint_required_blocks_do_not_feed_the_circuit_breaker(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"circuit_breaker": {"consecutive_blocks": 2}}
    sid, fence = start(api, contract)
    for _ in range(3):
        answer = cycle(api, sid, fence, call("escalate"))
        assert [r["code"] for r in answer["calls"][0]["reasons"]] == ["checkpoint_required"]
        assert answer["session_status"] == "active"
    session = api.get_session(sid).json()["session"]
    assert (session["status"], session["counters"]["consecutive_blocks"]) == ("active", 0)


def test_a_proposal_without_blocks_resets_consecutive_blocks(api: Api) -> None:
    sid, fence = start(api)
    cycle(api, sid, fence, call("delete_account"))
    cycle(api, sid, fence)
    assert api.get_session(sid).json()["session"]["counters"]["consecutive_blocks"] == 0


# -- receipts ----------------------------------------------------------------------------


def test_a_committed_receipt_advances_state_counters_and_phase(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    answer = commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"verified": True})
    assert answer["committed"] is True
    assert answer["commit_reason"] == "committed"
    assert answer["state_version"] == 1
    assert answer["phase"] == {"current": "verified", "legal_next": ["refunded"]}
    assert answer["pending_remaining"] == 0
    assert answer["session_status"] == "active"
    counters = api.get_session(sid).json()["session"]["counters"]
    assert counters["tool_calls"] == 1
    assert counters["calls_per_tool"] == {"verify_customer": 1}


def test_an_acknowledged_tool_commits_only_with_acknowledged_evidence(api: Api) -> None:
    sid, fence = start(api)
    verified(api, sid, fence)
    proposal = cycle(api, sid, fence, call("issue_refund", {"amount": 20}))
    pending_id = proposal["calls"][0]["pending_call_id"]
    assert proposal["calls"][0]["commit_requirement"] == "acknowledged"
    answer = api.receipt(
        sid,
        pending_call_id=pending_id,
        fence_token=fence,
        outcome="success",
        evidence={"kind": "ack", "acknowledged": False},
    ).json()
    assert answer["committed"] is False
    assert answer["commit_reason"] == "not_acknowledged"
    assert answer["state_version"] == 1


@pytest.mark.parametrize(
    ("outcome", "reason"), [("error", "outcome_error"), ("timeout", "outcome_timeout")]
)
def test_failed_outcomes_are_recorded_but_not_committed(
    api: Api, outcome: str, reason: str
) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("lookup_order"))
    answer = api.receipt(
        sid,
        pending_call_id=proposal["calls"][0]["pending_call_id"],
        fence_token=fence,
        outcome=outcome,
        error={"message": "boom"},
    ).json()
    assert (answer["committed"], answer["commit_reason"]) == (False, reason)
    session = api.get_session(sid, include="pending").json()["session"]
    assert session["counters"]["consecutive_errors"] == 1
    assert session["pending_calls"][0]["status"] == "uncommitted"


def test_consecutive_errors_trip_the_circuit_breaker(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"circuit_breaker": {"consecutive_errors": 2}}
    sid, fence = start(api, contract)
    for _ in range(2):
        proposal = cycle(api, sid, fence, call("lookup_order"))
        answer = api.receipt(
            sid,
            pending_call_id=proposal["calls"][0]["pending_call_id"],
            fence_token=fence,
            outcome="error",
        ).json()
    assert answer["session_status"] == "killed"
    assert api.get_session(sid).json()["session"]["killed"]["actor"] == "circuit_breaker"


def test_the_same_receipt_again_answers_the_first_answer(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    pending_id = proposal["calls"][0]["pending_call_id"]
    first = commit(api, sid, fence, pending_id, {"verified": True})
    again = commit(api, sid, fence, pending_id, {"verified": True})
    assert first == again
    assert api.get_session(sid).json()["session"]["state_version"] == 1


def test_a_different_receipt_for_a_receipted_call_is_a_conflict(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    pending_id = proposal["calls"][0]["pending_call_id"]
    commit(api, sid, fence, pending_id, {"verified": True})
    response = api.receipt(sid, pending_call_id=pending_id, fence_token=fence, outcome="error")
    assert response.status_code == 409
    assert error_code(response) == "RECEIPT_CONFLICT"


def test_a_receipt_for_an_unknown_pending_call_is_404(api: Api) -> None:
    sid, fence = start(api)
    response = api.receipt(sid, pending_call_id="pc_nope", fence_token=fence, outcome="success")
    assert response.status_code == 404
    assert error_code(response) == "PENDING_CALL_NOT_FOUND"


def test_a_receipt_with_the_wrong_fence_is_refused(api: Api) -> None:
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    response = api.receipt(
        sid,
        pending_call_id=proposal["calls"][0]["pending_call_id"],
        fence_token=9,
        outcome="success",
    )
    assert error_code(response) == "FENCE_MISMATCH"


def test_a_tool_advancing_to_an_undeclared_phase_commits_and_leaves_a_system_label(
    api: Api,
) -> None:
    contract = refund_contract()
    contract["tools"]["lookup_order"]["transitions"] = {"advances_to": "refunded"}
    sid, fence = start(api, contract)
    proposal = cycle(api, sid, fence, call("lookup_order"))
    answer = commit(api, sid, fence, proposal["calls"][0]["pending_call_id"])
    assert answer["committed"] is True
    assert answer["phase"]["current"] == "start"
    labels = api.get_session(sid).json()["session"]["labels"]
    assert [(lbl["key"], lbl["system"]) for lbl in labels] == [("phase_transition_refused", True)]


# -- every reason code of §4.2 ------------------------------------------------------------


def reasons_of(proposal: dict[str, Any], index: int = 0) -> list[str]:
    """The reason codes of one call."""
    return [r["code"] for r in proposal["calls"][index]["reasons"]]


def test_reason_tool_filtered(api: Api) -> None:
    sid, fence = start(api)
    api.tool_filter(sid, allow=["verify_customer"])
    assert reasons_of(cycle(api, sid, fence, call("lookup_order"))) == ["tool_filtered"]


def test_reason_no_contract(api: Api) -> None:
    sid, fence = start(api)
    assert reasons_of(cycle(api, sid, fence, call("mystery"))) == ["no_contract"]


def test_reason_wrong_phase(api: Api) -> None:
    sid, fence = start(api)
    assert "wrong_phase" in reasons_of(cycle(api, sid, fence, call("issue_refund", {"amount": 1})))


def test_reason_forbidden_in_state(api: Api) -> None:
    contract = refund_contract()
    contract["tools"]["verify_customer"]["forbids_after"] = ["lookup_order"]
    sid, fence = start(api, contract)
    verified(api, sid, fence)
    assert reasons_of(cycle(api, sid, fence, call("lookup_order"))) == ["forbidden_in_state"]


def test_reason_risk_default_block(api: Api) -> None:
    sid, fence = start(api)
    assert reasons_of(cycle(api, sid, fence, call("delete_account"))) == ["risk_default_block"]


def test_reason_precondition_not_met_names_the_required_tool(api: Api) -> None:
    contract = refund_contract()
    contract["tools"]["issue_refund"].pop("transitions", None)
    sid, fence = start(api, contract)
    proposal = cycle(api, sid, fence, call("issue_refund", {"amount": 1}))
    reason = proposal["calls"][0]["reasons"][0]
    assert reason["code"] == "precondition_not_met"
    assert reason["detail"] == "Required prior tool: verify_customer"


def test_reason_argument_invariant_failed_carries_path_and_operator(api: Api) -> None:
    sid, fence = start(api)
    verified(api, sid, fence)
    proposal = cycle(api, sid, fence, call("issue_refund", {"amount": 900}))
    reason = proposal["calls"][0]["reasons"][0]
    assert reason["code"] == "argument_invariant_failed"
    assert (reason["path"], reason["operator"]) == ("$.amount", "lte")


def test_reason_session_limit_exceeded_counts_earlier_calls_of_the_same_proposal(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"max_tool_calls": 1}
    sid, fence = start(api, contract)
    proposal = cycle(api, sid, fence, call("lookup_order"), call("lookup_order", {"a": 1}, "c2"))
    assert reasons_of(proposal, 0) == []
    assert reasons_of(proposal, 1) == ["session_limit_exceeded"]


def test_reason_max_calls_per_tool_exceeded(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"max_calls_per_tool": {"lookup_order": 1}}
    sid, fence = start(api, contract)
    proposal = cycle(api, sid, fence, call("lookup_order"), call("lookup_order", {"a": 1}, "c2"))
    assert reasons_of(proposal, 1) == ["max_calls_per_tool_exceeded"]


def test_reason_loop_detected(api: Api) -> None:
    contract = refund_contract()
    contract["session_limits"] = {"loop_detection": {"window": 5, "threshold": 2}}
    sid, fence = start(api, contract)
    first = cycle(api, sid, fence, call("lookup_order", {"id": 7}))
    commit(api, sid, fence, first["calls"][0]["pending_call_id"])
    assert reasons_of(cycle(api, sid, fence, call("lookup_order", {"id": 7}))) == ["loop_detected"]


def test_reason_checkpoint_required_and_denied_and_decisions_become_system_labels(
    api: Api,
) -> None:
    sid, fence = start(api)
    required = cycle(api, sid, fence, call("escalate"))
    assert reasons_of(required) == ["checkpoint_required"]
    assert required["calls"][0]["checkpoint"]["status"] == "required"
    denied = cycle(
        api,
        sid,
        fence,
        call("escalate", call_id="c9"),
        checkpoint_decisions=[{"tool_call_id": "c9", "approved": False, "approver": "ana"}],
    )
    assert reasons_of(denied) == ["checkpoint_denied"]
    approved = cycle(
        api,
        sid,
        fence,
        call("escalate", call_id="c10"),
        checkpoint_decisions=[{"tool_call_id": "c10", "approved": True}],
    )
    assert approved["decision"] == "allow"
    keys = [lbl["key"] for lbl in api.get_session(sid).json()["session"]["labels"]]
    assert keys == ["checkpoint:c9", "checkpoint:c10"]


def test_all_applicable_reasons_are_reported_in_order(api: Api) -> None:
    sid, fence = start(api)
    api.tool_filter(sid, deny=["issue_refund"])
    codes = reasons_of(cycle(api, sid, fence, call("issue_refund", {"amount": 900})))
    assert codes == [
        "tool_filtered",
        "wrong_phase",
        "precondition_not_met",
        "argument_invariant_failed",
    ]


# -- execution constraints, bindings, ref, unenforced fields (PROTOCOL §4.1) --------------


def test_an_execution_constraint_blocks_an_argument_outside_it(api: Api) -> None:
    contract = refund_contract()
    lookup = contract["tools"]["lookup_order"]
    lookup["execution_constraints"] = {
        "arguments": [{"path": "$.amount", "operator": "lte", "value": 5}]
    }
    sid, fence = start(api, contract)
    blocked = cycle(api, sid, fence, call("lookup_order", {"amount": 50}))["calls"][0]
    assert (blocked["decision"], blocked["pending_call_id"]) == ("block", None)
    [reason] = blocked["reasons"]
    assert (reason["code"], reason["path"], reason["operator"]) == (
        "argument_invariant_failed",
        "$.amount",
        "lte",
    )
    allowed = cycle(api, sid, fence, call("lookup_order", {"amount": 5}))["calls"][0]
    assert allowed["decision"] == "allow"


def binding_contract() -> dict[str, Any]:
    """lookup_order binds the order it looked up; issue_refund must refund that order."""
    contract = refund_contract()
    contract["tools"]["lookup_order"]["binds"] = [
        {"name": "order", "from": "$.arguments.order_id"},
        {"name": "customer", "from": "$.output.customer_id"},
    ]
    contract["tools"]["issue_refund"]["argument_value_invariants"].append(
        {"path": "$.order_id", "operator": "ref", "value": "order", "rule_id": "same-order"}
    )
    return contract


def test_a_committed_call_fills_bindings_from_its_arguments_and_output(api: Api) -> None:
    sid, fence = start(api, binding_contract())
    proposal = cycle(api, sid, fence, call("lookup_order", {"order_id": "o-1"}))
    commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"customer_id": "c-9"})
    bindings = api.get_session(sid).json()["session"]["bindings"]
    assert bindings == {"order": "o-1", "customer": "c-9"}


def test_ref_blocks_an_argument_that_differs_from_its_binding_with_binding_mismatch(
    api: Api,
) -> None:
    sid, fence = start(api, binding_contract())
    verified(api, sid, fence)
    early = cycle(api, sid, fence, call("issue_refund", {"amount": 10, "order_id": "o-1"}))
    assert [r["code"] for r in early["calls"][0]["reasons"]] == ["binding_mismatch"]
    proposal = cycle(api, sid, fence, call("lookup_order", {"order_id": "o-1"}))
    commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"customer_id": "c-9"})
    other = cycle(api, sid, fence, call("issue_refund", {"amount": 10, "order_id": "o-2"}))
    [reason] = other["calls"][0]["reasons"]
    assert (reason["code"], reason["path"], reason["operator"], reason["rule_id"]) == (
        "binding_mismatch",
        "$.order_id",
        "ref",
        "same-order",
    )
    same = cycle(api, sid, fence, call("issue_refund", {"amount": 10, "order_id": "o-1"}))
    assert same["calls"][0]["decision"] == "allow"


def test_the_session_lists_the_published_fields_the_mock_does_not_enforce(api: Api) -> None:
    contract = refund_contract()
    contract["tools"]["issue_refund"]["retries"] = {"max_attempts": 1, "retry_on": []}
    contract["tools"]["issue_refund"]["timeouts"] = {"total_ms": 3000}
    sid, _ = start(api, contract)
    governance = api.get_session(sid).json()["session"]["governance"]
    assert governance["unenforced"] == ["tools.issue_refund.timeouts", "tools.issue_refund.retries"]
    plain, _ = start(api)
    assert api.get_session(plain).json()["session"]["governance"]["unenforced"] == []


def test_a_typo_in_a_request_contract_is_a_compile_error_with_a_did_you_mean(api: Api) -> None:
    contract = refund_contract()
    contract["sessionLimits"] = contract.pop("session_limits")
    response = api.create_session(contract={"compiled_session": contract})
    assert (response.status_code, error_code(response)) == (422, "COMPILE_ERROR")
    [error] = response.json()["error"]["details"]["errors"]
    assert error["path"] == "/sessionLimits"
    assert "did you mean 'session_limits'?" in error["message"]
