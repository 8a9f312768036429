"""Judging tool calls: every reason code and operator, their order, limits, narrowing, phases."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vesanor_mock.domain.contracts import CompiledSession, compile_session
from vesanor_mock.domain.models import CommittedCall, Lease, Session, ToolFilter
from vesanor_mock.domain.policy import (
    PolicyView,
    Reason,
    checkpoint_info,
    forbids_after,
    judge_call,
    narrow,
    phase_after_commit,
    preflight_limits,
)

from .contracts_examples import refund_contract

VERIFIED = CommittedCall("verify_customer", {"id": "c1"}, {"verified": True})


def contract(**overrides: Any) -> CompiledSession:
    """The compiled refund contract, with top-level fields replaced."""
    return compile_session(refund_contract(**overrides))


def contract_with_tool(name: str, **fields: Any) -> CompiledSession:
    """The compiled refund contract with one tool's fields replaced or added."""
    raw = refund_contract()
    raw["tools"].setdefault(name, {}).update(fields)
    return compile_session(raw)


def view(
    phase: str = "start",
    committed: list[CommittedCall] | None = None,
    *,
    tool_filter: ToolFilter | None = None,
    forbidden: set[str] | None = None,
    cost_usd: float = 0.0,
) -> PolicyView:
    """A policy view whose counters agree with its committed calls."""
    calls = list(committed or [])
    per_tool: dict[str, int] = {}
    for call in calls:
        per_tool[call.tool_name] = per_tool.get(call.tool_name, 0) + 1
    return PolicyView(phase, tool_filter, calls, per_tool, len(calls), cost_usd, forbidden or set())


def codes(reasons: list[Reason]) -> list[str]:
    """Just the reason codes, in order."""
    return [r.code for r in reasons]


def refund_ready() -> PolicyView:
    """A view in which issue_refund may run."""
    return view("verified", [VERIFIED])


# --- the view and the reason ----------------------------------------------------------


def make_session(**fields: Any) -> Session:
    """A minimal session."""
    lease = Lease("lease_1", 1, "worker", None)
    return Session(
        tenant="t",
        session_id="sess_1",
        agent="refund-bot",
        environment="production",
        mode="enforce",
        enforcement="protective",
        lease=lease,
        contract=None,
        governance_source="none",
        created_at="",
        updated_at="",
        **fields,
    )


def test_a_policy_view_reads_the_sessions_state_without_copying_it() -> None:
    session = make_session(phase="verified", committed=[VERIFIED], forbidden={"x"})
    session.counters.tool_calls = 1
    session.counters.calls_per_tool["verify_customer"] = 1
    session.counters.cost_usd = 0.5
    session.tool_filter = ToolFilter(allow=None, deny=["x"])
    seen = PolicyView.of(session)
    assert seen.committed is session.committed and seen.forbidden is session.forbidden
    assert seen.calls_per_tool is session.counters.calls_per_tool
    assert (seen.phase, seen.tool_calls, seen.cost_usd) == ("verified", 1, 0.5)
    assert seen.tool_filter is session.tool_filter


def test_a_reason_on_the_wire_omits_the_fields_it_does_not_have() -> None:
    assert Reason("wrong_phase", "d").to_dict() == {"code": "wrong_phase", "detail": "d"}
    full = Reason("argument_invariant_failed", "d", "$.amount", "lte", "cap").to_dict()
    assert full == {
        "code": "argument_invariant_failed",
        "detail": "d",
        "path": "$.amount",
        "operator": "lte",
        "rule_id": "cap",
    }


# --- each reason ----------------------------------------------------------------------


def test_a_call_that_meets_its_contract_has_no_reasons() -> None:
    assert judge_call(contract(), view(), "verify_customer", {"id": "c1"}) == []
    assert judge_call(contract(), refund_ready(), "issue_refund", {"amount": 500}) == []


@pytest.mark.parametrize(
    "tool_filter",
    [ToolFilter(allow=None, deny=["lookup_order"]), ToolFilter(allow=["verify_customer"], deny=[])],
)
def test_a_tool_removed_by_the_tool_filter_is_blocked(tool_filter: ToolFilter) -> None:
    reasons = judge_call(contract(), view(tool_filter=tool_filter), "lookup_order", {})
    assert codes(reasons) == ["tool_filtered"]


def test_a_tool_without_a_contract_is_blocked_under_unmatched_policy_block() -> None:
    [reason] = judge_call(contract(), view(), "send_email", {})
    assert reason.code == "no_contract" and "send_email" in reason.detail


def test_a_tool_without_a_contract_is_allowed_under_unmatched_policy_allow() -> None:
    assert judge_call(contract(unmatched_policy="allow"), view(), "send_email", {}) == []


def test_session_limits_still_apply_to_a_tool_without_a_contract() -> None:
    compiled = contract(unmatched_policy="allow")
    ten = [CommittedCall("lookup_order", {"n": n}, {}) for n in range(10)]
    reasons = judge_call(compiled, view(committed=ten), "send_email", {})
    assert codes(reasons) == ["session_limit_exceeded"]


def test_without_any_contract_only_the_tool_filter_applies() -> None:
    assert judge_call(None, view(), "anything", {}) == []
    filtered = view(tool_filter=ToolFilter(allow=[], deny=[]))
    assert codes(judge_call(None, filtered, "anything", {})) == ["tool_filtered"]


def test_a_tool_outside_its_valid_phases_is_blocked_with_wrong_phase() -> None:
    [reason, *_] = judge_call(contract(), view("start", [VERIFIED]), "issue_refund", {"amount": 1})
    assert reason.code == "wrong_phase"
    assert reason.detail == "Tool issue_refund is valid in phases [verified], not in start"


def test_a_tool_without_valid_phases_is_valid_in_every_phase() -> None:
    for phase in ("start", "verified", "refunded"):
        assert judge_call(contract(), view(phase), "lookup_order", {}) == []


def test_a_tool_named_by_a_committed_forbids_after_is_forbidden_in_state() -> None:
    compiled = contract_with_tool("verify_customer", forbids_after=["lookup_order"])
    [reason] = judge_call(
        compiled, view(committed=[VERIFIED], forbidden={"lookup_order"}), "lookup_order", {}
    )
    assert reason.code == "forbidden_in_state"
    assert reason.detail == "Tool lookup_order is forbidden after verify_customer"


def test_forbidden_in_state_also_applies_to_a_tool_without_a_contract() -> None:
    compiled = contract(unmatched_policy="allow")
    reasons = judge_call(compiled, view(forbidden={"send_email"}), "send_email", {})
    assert codes(reasons) == ["forbidden_in_state"]


def test_a_tool_with_gate_block_is_blocked_by_risk_default_block() -> None:
    assert codes(judge_call(contract(), view(), "delete_account", {})) == ["risk_default_block"]


def test_a_risk_default_block_applies_to_tools_of_that_side_effect() -> None:
    compiled = contract(risk_defaults={"write": "block"})
    reasons = judge_call(compiled, view(), "escalate", {}, checkpoint_decision={"approved": True})
    assert codes(reasons) == ["risk_default_block"]
    assert "write" in reasons[0].detail


def test_gate_allow_overrides_a_blocking_risk_default() -> None:
    raw = refund_contract(risk_defaults={"write": "block"})
    raw["tools"]["escalate"]["gate"] = "allow"
    decision = {"approved": True}
    assert (
        judge_call(compile_session(raw), view(), "escalate", {}, checkpoint_decision=decision) == []
    )


def test_a_missing_prior_tool_is_precondition_not_met_with_the_public_detail() -> None:
    [reason] = judge_call(contract(), view("verified"), "issue_refund", {"amount": 10})
    assert reason.to_dict() == {
        "code": "precondition_not_met",
        "detail": "Required prior tool: verify_customer",
    }


def test_with_output_is_checked_on_the_latest_committed_output() -> None:
    denied = CommittedCall("verify_customer", {}, {"verified": False})
    [reason] = judge_call(
        contract(), view("verified", [VERIFIED, denied]), "issue_refund", {"amount": 1}
    )
    assert reason.to_dict() == {
        "code": "precondition_not_met",
        "detail": "Output of verify_customer at $.verified fails equals true",
        "path": "$.verified",
        "operator": "equals",
    }
    assert (
        judge_call(contract(), view("verified", [denied, VERIFIED]), "issue_refund", {"amount": 1})
        == []
    )


def checks_output(operator: str, value: Any, output: Any) -> bool:
    """Whether a with_output check `$.score <operator> value` passes on this output."""
    precondition = {
        "requires_prior_tool": "lookup_order",
        "with_output": [{"path": "$.score", operator: value}],
    }
    compiled = contract_with_tool("verify_customer", preconditions=[precondition])
    done = view(committed=[CommittedCall("lookup_order", {}, output)])
    return judge_call(compiled, done, "verify_customer", {}) == []


@pytest.mark.parametrize(
    ("operator", "value", "output", "passes"),
    [
        ("equals", 3, {"score": 3}, True),
        ("equals", 3, {"score": "3"}, False),
        ("equals", 3, {}, False),
        ("gte", 3, {"score": 3}, True),
        ("gte", 3, {"score": 2.9}, False),
        ("gte", 3, {"score": "9"}, False),
        ("gte", 3, {}, False),
        ("lte", 3, {"score": True}, False),
        ("lte", 3, None, False),
        ("exists", True, {"score": None}, True),
        ("exists", True, {}, False),
        ("exists", False, {}, True),
        ("exists", False, {"score": 1}, False),
    ],
)
def test_with_output_operators_fail_closed(
    operator: str, value: Any, output: Any, passes: bool
) -> None:
    assert checks_output(operator, value, output) is passes


# --- argument invariants --------------------------------------------------------------


def holds(operator: str, value: Any, arguments: dict[str, Any], path: str = "$.x") -> bool:
    """Whether an invariant `path operator value` holds for these arguments."""
    rule = {"path": path, "operator": operator, "value": value}
    compiled = contract_with_tool("lookup_order", argument_value_invariants=[rule])
    return judge_call(compiled, view(), "lookup_order", arguments) == []


@pytest.mark.parametrize(
    ("operator", "value", "arguments", "expected"),
    [
        ("equals", "a", {"x": "a"}, True),
        ("equals", 1, {"x": 1.0}, True),
        ("equals", 1, {"x": True}, False),
        ("equals", True, {"x": 1}, False),
        ("equals", {"k": [1]}, {"x": {"k": [1]}}, True),
        ("equals", None, {"x": None}, True),
        ("equals", None, {}, False),
        ("not_equals", "a", {"x": "b"}, True),
        ("not_equals", "a", {"x": "a"}, False),
        ("not_equals", "a", {}, True),
        ("exists", True, {"x": 0}, True),
        ("exists", True, {}, False),
        ("exists", False, {}, True),
        ("exists", False, {"x": None}, False),
        ("gte", 5, {"x": 5}, True),
        ("gte", 5, {"x": 4}, False),
        ("lte", 5, {"x": 5.0}, True),
        ("lte", 5, {"x": 6}, False),
        ("gt", 5, {"x": 5}, False),
        ("gt", 5, {"x": 5.5}, True),
        ("lt", 5, {"x": 4}, True),
        ("lt", 5, {"x": 5}, False),
        ("lt", 5, {"x": "4"}, False),
        ("lt", 5, {"x": False}, False),
        ("lt", 5, {}, False),
        ("one_of", ["a", "b"], {"x": "b"}, True),
        ("one_of", ["a", "b"], {"x": "c"}, False),
        ("one_of", [1], {"x": True}, False),
        ("one_of", [1], {}, False),
        ("regex", "^ord_[0-9]+$", {"x": "ord_42"}, True),
        ("regex", "[0-9]", {"x": "abc1def"}, True),
        ("regex", "^[0-9]+$", {"x": "12a"}, False),
        ("regex", "1", {"x": 1}, False),
        ("regex", ".*", {}, False),
        ("min_length", 2, {"x": "ab"}, True),
        ("min_length", 2, {"x": [1]}, False),
        ("max_length", 2, {"x": [1, 2]}, True),
        ("max_length", 2, {"x": "abc"}, False),
        ("max_length", 2, {"x": 12}, False),
        ("max_length", 2, {"x": {"a": 1}}, False),
        ("min_length", 0, {}, False),
    ],
)
def test_every_invariant_operator_follows_its_documented_semantics(
    operator: str, value: Any, arguments: dict[str, Any], expected: bool
) -> None:
    assert holds(operator, value, arguments) is expected


def test_invariant_paths_reach_nested_members_and_list_items() -> None:
    arguments = {"order": {"lines": [{"qty": 2}]}}
    assert holds("lte", 3, arguments, "$.order.lines[0].qty")
    assert not holds("lte", 1, arguments, "$.order.lines[0].qty")
    assert not holds("lte", 3, arguments, "$.order.lines[1].qty")
    assert holds("exists", True, arguments, "$")


def test_a_failing_invariant_names_its_path_operator_rule_and_what_was_found() -> None:
    [reason] = judge_call(contract(), refund_ready(), "issue_refund", {"amount": 900})
    assert reason.to_dict() == {
        "code": "argument_invariant_failed",
        "detail": "Argument at $.amount: expected lte 500, found 900",
        "path": "$.amount",
        "operator": "lte",
        "rule_id": "refund-cap",
    }


def test_a_missing_argument_is_reported_as_found_nothing() -> None:
    [reason] = judge_call(contract(), refund_ready(), "issue_refund", {})
    assert reason.detail == "Argument at $.amount: expected lte 500, found nothing"


def test_each_failing_invariant_gives_its_own_reason() -> None:
    rules = [
        {"path": "$.amount", "operator": "gt", "value": 0, "rule_id": "positive"},
        {"path": "$.currency", "operator": "one_of", "value": ["EUR", "USD"]},
        {"path": "$.note", "operator": "max_length", "value": 3},
    ]
    compiled = contract_with_tool("lookup_order", argument_value_invariants=rules)
    reasons = judge_call(
        compiled, view(), "lookup_order", {"amount": 0, "currency": "GBP", "note": "ok"}
    )
    assert [(r.path, r.operator, r.rule_id) for r in reasons] == [
        ("$.amount", "gt", "positive"),
        ("$.currency", "one_of", None),
    ]


# --- limits ---------------------------------------------------------------------------


def test_max_tool_calls_counts_committed_calls_and_earlier_calls_of_the_proposal() -> None:
    compiled = contract(session_limits={"max_tool_calls": 3})
    two = view(committed=[VERIFIED, VERIFIED])
    assert judge_call(compiled, two, "lookup_order", {}) == []
    [reason] = judge_call(compiled, two, "lookup_order", {}, earlier=[("lookup_order", {"a": 1})])
    assert reason.to_dict() == {
        "code": "session_limit_exceeded",
        "detail": "max_tool_calls 3 reached",
    }


def test_a_spent_cost_budget_blocks_every_call() -> None:
    compiled = contract(session_limits={"max_cost_per_session": 1.0})
    assert judge_call(compiled, view(cost_usd=1.0), "lookup_order", {}) == []
    [reason] = judge_call(compiled, view(cost_usd=1.25), "lookup_order", {})
    assert reason.code == "session_limit_exceeded" and "max_cost_per_session" in reason.detail


def test_max_calls_per_tool_counts_earlier_calls_of_the_same_tool_only() -> None:
    compiled = contract(session_limits={"max_calls_per_tool": {"lookup_order": 2}})
    one = view(committed=[CommittedCall("lookup_order", {"n": 0}, {})])
    assert (
        judge_call(compiled, one, "lookup_order", {"n": 1}, earlier=[("verify_customer", {})]) == []
    )
    reasons = judge_call(
        compiled, one, "lookup_order", {"n": 2}, earlier=[("lookup_order", {"n": 1})]
    )
    assert codes(reasons) == ["max_calls_per_tool_exceeded"]
    assert "lookup_order" in reasons[0].detail and "2" in reasons[0].detail


def looping(window: int = 5, threshold: int = 3) -> CompiledSession:
    """The refund contract with loop detection only."""
    return contract(session_limits={"loop_detection": {"window": window, "threshold": threshold}})


def test_the_threshold_th_equal_call_within_the_window_is_a_loop() -> None:
    same = CommittedCall("lookup_order", {"id": 1}, {})
    assert judge_call(looping(), view(committed=[same]), "lookup_order", {"id": 1}) == []
    reasons = judge_call(looping(), view(committed=[same, same]), "lookup_order", {"id": 1})
    assert codes(reasons) == ["loop_detected"]


def test_loop_detection_compares_arguments_as_json_values() -> None:
    same = CommittedCall("lookup_order", {"id": 1, "q": {"a": [True]}}, {})
    assert codes(
        judge_call(
            looping(), view(committed=[same, same]), "lookup_order", {"q": {"a": [True]}, "id": 1.0}
        )
    ) == ["loop_detected"]
    assert (
        judge_call(
            looping(), view(committed=[same, same]), "lookup_order", {"id": 1, "q": {"a": [1]}}
        )
        == []
    )


def test_calls_with_other_arguments_or_tools_do_not_count_towards_a_loop() -> None:
    others = [
        CommittedCall("lookup_order", {"id": 2}, {}),
        CommittedCall("verify_customer", {"id": 1}, {}),
    ]
    assert judge_call(looping(), view(committed=others * 2), "lookup_order", {"id": 1}) == []


def test_equal_calls_older_than_the_window_do_not_count_towards_a_loop() -> None:
    same = CommittedCall("lookup_order", {"id": 1}, {})
    other = CommittedCall("verify_customer", {}, {})
    assert (
        judge_call(
            looping(window=2), view(committed=[same, same, other, other]), "lookup_order", {"id": 1}
        )
        == []
    )
    assert codes(
        judge_call(
            looping(window=4), view(committed=[same, same, other, other]), "lookup_order", {"id": 1}
        )
    ) == ["loop_detected"]


def test_earlier_equal_calls_of_the_proposal_count_towards_a_loop() -> None:
    earlier = [("lookup_order", {"id": 1}), ("lookup_order", {"id": 1})]
    assert codes(
        judge_call(looping(window=0), view(), "lookup_order", {"id": 1}, earlier=earlier)
    ) == ["loop_detected"]
    assert (
        judge_call(looping(window=0), view(), "lookup_order", {"id": 1}, earlier=earlier[:1]) == []
    )


# --- checkpoints ----------------------------------------------------------------------


def test_a_checkpointed_tool_without_a_decision_needs_one() -> None:
    [reason] = judge_call(contract(), view(), "escalate", {})
    assert reason.code == "checkpoint_required" and "human approval" in reason.detail


def test_a_denied_checkpoint_blocks_and_an_approved_one_adds_nothing() -> None:
    denied = judge_call(
        contract(),
        view(),
        "escalate",
        {},
        checkpoint_decision={"approved": False, "approver": "ann"},
    )
    assert codes(denied) == ["checkpoint_denied"] and "ann" in denied[0].detail
    assert (
        judge_call(contract(), view(), "escalate", {}, checkpoint_decision={"approved": True}) == []
    )


def test_a_decision_that_does_not_say_approved_true_is_a_denial() -> None:
    reasons = judge_call(
        contract(), view(), "escalate", {}, checkpoint_decision={"approver": "ann"}
    )
    assert codes(reasons) == ["checkpoint_denied"]


def test_a_decision_for_a_tool_without_checkpoint_is_ignored() -> None:
    assert (
        judge_call(contract(), view(), "lookup_order", {}, checkpoint_decision={"approved": False})
        == []
    )


def test_checkpoint_info_reports_reason_status_and_approver() -> None:
    compiled = contract()
    assert checkpoint_info(compiled, "escalate", None) == {
        "reason": "human approval",
        "status": "required",
        "approver": None,
    }
    approved = checkpoint_info(compiled, "escalate", {"approved": True, "approver": "ann"})
    assert approved == {"reason": "human approval", "status": "approved", "approver": "ann"}
    denied = checkpoint_info(compiled, "escalate", {"approved": False})
    assert denied is not None and denied["status"] == "denied"
    assert checkpoint_info(compiled, "lookup_order", None) is None
    assert checkpoint_info(None, "escalate", None) is None


# --- order ----------------------------------------------------------------------------


def test_reasons_are_reported_in_the_order_of_section_4_2() -> None:
    raw = refund_contract(
        session_limits={
            "max_tool_calls": 2,
            "max_cost_per_session": 1.0,
            "max_calls_per_tool": {"mega": 1},
            "loop_detection": {"window": 5, "threshold": 2},
        },
        risk_defaults={"admin": "block"},
    )
    raw["tools"]["mega"] = {
        "side_effect": "admin",
        "evidence_class": "local_transaction",
        "commit_requirement": "none",
        "transitions": {"valid_in_phases": ["refunded"]},
        "preconditions": [{"requires_prior_tool": "issue_refund"}],
        "argument_value_invariants": [{"path": "$.n", "operator": "gt", "value": 5}],
        "checkpoint": {},
    }
    raw["tools"]["verify_customer"]["forbids_after"] = ["mega"]
    state = view(
        "start",
        [VERIFIED, CommittedCall("mega", {"n": 1}, {})],
        tool_filter=ToolFilter(allow=None, deny=["mega"]),
        forbidden={"mega"},
        cost_usd=2.0,
    )
    reasons = judge_call(compile_session(raw), state, "mega", {"n": 1})
    assert codes(reasons) == [
        "tool_filtered",
        "wrong_phase",
        "forbidden_in_state",
        "risk_default_block",
        "precondition_not_met",
        "argument_invariant_failed",
        "session_limit_exceeded",
        "session_limit_exceeded",
        "max_calls_per_tool_exceeded",
        "loop_detected",
        "checkpoint_required",
    ]
    limit_details = [r.detail for r in reasons if r.code == "session_limit_exceeded"]
    assert limit_details[0] == "max_tool_calls 2 reached"


def test_no_contract_comes_after_the_tool_filter_and_before_state_and_limits() -> None:
    compiled = contract(session_limits={"max_tool_calls": 0})
    state = view(tool_filter=ToolFilter(allow=[], deny=[]), forbidden={"ghost"})
    assert codes(judge_call(compiled, state, "ghost", {})) == [
        "tool_filtered",
        "no_contract",
        "forbidden_in_state",
        "session_limit_exceeded",
    ]


def test_judging_a_call_changes_nothing_in_the_view() -> None:
    state = view("verified", [VERIFIED], forbidden={"x"}, cost_usd=9.0)
    before = copy.deepcopy(state)
    judge_call(contract(), state, "issue_refund", {"amount": 9000}, earlier=[("lookup_order", {})])
    narrow(contract(), state, None)
    preflight_limits(contract(), state, 99)
    assert state == before


# --- narrowing ------------------------------------------------------------------------


def test_narrowing_without_offered_tools_considers_every_contract_tool_sorted() -> None:
    visible, narrowed = narrow(contract(), view(), None)
    assert visible == ["delete_account", "escalate", "lookup_order", "verify_customer"]
    assert narrowed == [{"tool": "issue_refund", "reason": "wrong_phase"}]


def test_narrowing_keeps_the_offered_order_and_drops_repeats() -> None:
    visible, narrowed = narrow(
        contract(), view(), ["lookup_order", "verify_customer", "lookup_order"]
    )
    assert visible == ["lookup_order", "verify_customer"] and narrowed == []


def test_narrowing_without_any_contract_only_applies_the_tool_filter() -> None:
    assert narrow(None, view(), None) == ([], [])
    filtered = view(tool_filter=ToolFilter(allow=None, deny=["b"]))
    assert narrow(None, filtered, ["a", "b"]) == (["a"], [{"tool": "b", "reason": "tool_filtered"}])


def test_narrowing_names_each_reason() -> None:
    compiled = contract_with_tool("verify_customer", forbids_after=["lookup_order"])
    state = view(
        "verified",
        tool_filter=ToolFilter(allow=None, deny=["escalate"]),
        forbidden={"lookup_order"},
    )
    offered = [
        "escalate",
        "ghost",
        "verify_customer",
        "lookup_order",
        "issue_refund",
        "delete_account",
    ]
    visible, narrowed = narrow(compiled, state, offered)
    assert visible == ["verify_customer", "delete_account"]
    assert narrowed == [
        {"tool": "escalate", "reason": "tool_filtered"},
        {"tool": "ghost", "reason": "no_contract"},
        {"tool": "lookup_order", "reason": "forbidden_in_state"},
        {"tool": "issue_refund", "reason": "precondition_not_met"},
    ]
    _, wrong = narrow(compiled, view("refunded"), ["issue_refund"])
    assert wrong == [{"tool": "issue_refund", "reason": "wrong_phase"}]


def test_narrowing_gives_only_the_first_reason_that_applies() -> None:
    state = view(
        "start",
        tool_filter=ToolFilter(allow=None, deny=["issue_refund"]),
        forbidden={"issue_refund"},
    )
    assert narrow(contract(), state, ["issue_refund"])[1] == [
        {"tool": "issue_refund", "reason": "tool_filtered"}
    ]
    state = view("start", forbidden={"issue_refund"})
    assert narrow(contract(), state, ["issue_refund"])[1] == [
        {"tool": "issue_refund", "reason": "wrong_phase"}
    ]


def test_narrowing_ignores_unmatched_tools_under_policy_allow() -> None:
    assert narrow(contract(unmatched_policy="allow"), view(), ["ghost"]) == (["ghost"], [])


def test_narrowing_hides_a_tool_whose_prior_output_fails_with_output() -> None:
    unverified = CommittedCall("verify_customer", {}, {"verified": "yes"})
    assert narrow(contract(), view("verified", [unverified]), ["issue_refund"]) == (
        [],
        [{"tool": "issue_refund", "reason": "precondition_not_met"}],
    )
    verified = CommittedCall("verify_customer", {}, {"verified": True})
    assert narrow(contract(), view("verified", [verified]), ["issue_refund"]) == (
        ["issue_refund"],
        [],
    )


# --- preflight limits -----------------------------------------------------------------


def test_preflight_is_refused_once_max_steps_is_reached() -> None:
    compiled = contract(session_limits={"max_steps": 3})
    assert preflight_limits(compiled, view(), 2) == []
    assert preflight_limits(compiled, view(), 3) == [
        Reason("session_limit_exceeded", "max_steps 3 reached")
    ]


def test_preflight_is_refused_once_the_cost_budget_is_spent() -> None:
    compiled = contract(session_limits={"max_cost_per_session": 1.0})
    assert preflight_limits(compiled, view(cost_usd=0.99), 0) == []
    [reason] = preflight_limits(compiled, view(cost_usd=1.0), 0)
    assert reason.code == "session_limit_exceeded" and "max_cost_per_session" in reason.detail


def test_preflight_reports_both_limits_steps_first() -> None:
    compiled = contract(session_limits={"max_steps": 1, "max_cost_per_session": 0})
    assert [r.detail.split()[0] for r in preflight_limits(compiled, view(), 1)] == [
        "max_steps",
        "max_cost_per_session",
    ]


def test_preflight_without_contract_or_limits_has_no_limits() -> None:
    assert preflight_limits(None, view(cost_usd=1e9), 10**6) == []
    assert preflight_limits(contract(session_limits=None), view(cost_usd=1e9), 10**6) == []


# --- commits: phases and forbidden tools ----------------------------------------------


def test_a_commit_advances_along_a_declared_transition() -> None:
    assert phase_after_commit(contract(), "start", "verify_customer") == ("verified", False)
    assert phase_after_commit(contract(), "verified", "issue_refund") == ("refunded", False)


def test_an_undeclared_transition_is_refused_and_the_phase_stays() -> None:
    assert phase_after_commit(contract(), "start", "issue_refund") == ("start", True)


def test_advancing_to_the_current_phase_is_not_a_refusal() -> None:
    assert phase_after_commit(contract(), "verified", "verify_customer") == ("verified", False)


def test_tools_that_do_not_advance_leave_the_phase_alone() -> None:
    assert phase_after_commit(contract(), "start", "lookup_order") == ("start", False)
    assert phase_after_commit(contract(), "start", "ghost") == ("start", False)
    assert phase_after_commit(None, "start", "verify_customer") == ("start", False)


def test_forbids_after_lists_what_a_commit_forbids() -> None:
    compiled = contract_with_tool("delete_account", forbids_after=["issue_refund", "escalate"])
    assert forbids_after(compiled, "delete_account") == ("issue_refund", "escalate")
    assert forbids_after(compiled, "lookup_order") == ()
    assert forbids_after(compiled, "ghost") == ()
    assert forbids_after(None, "delete_account") == ()
