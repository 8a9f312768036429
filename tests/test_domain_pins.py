"""Behaviours that mutation testing of the domain found unpinned (issue 19): each test here
fails against the mutant named in its docstring."""

from __future__ import annotations

from typing import Any

import pytest

from vesanor_mock.domain import cycle, receipts
from vesanor_mock.domain.sessionops import Options
from vesanor_mock.domain.workflows import compile_workflow
from vesanor_mock.domain.world import World, WorldSpec
from vesanor_mock.errors import ApiError, CompileError

from .contracts_examples import refund_contract, refund_tools

TENANT = "default"


class Driver:
    """One session of a fresh world, driven through the runtime's methods."""

    def __init__(self, contract: dict[str, Any] | None = None, **options: Any) -> None:
        self.world = World(WorldSpec(options=Options(**options)))
        self.runtime = self.world.runtime
        body: dict[str, Any] = {"session_id": "s-1", "agent": "refund-bot"}
        if contract is not None:
            body["contract"] = {"compiled_session": contract}
        self.runtime.create_session(TENANT, body)
        self.fence = 1

    def preflight(self, **body: Any) -> dict[str, Any]:
        return dict(self.runtime.preflight(TENANT, "s-1", {"fence_token": self.fence, **body}))

    def propose(self, *calls: tuple[str, dict[str, Any]], **body: Any) -> dict[str, Any]:
        prepared = body.pop("prepared_request_id", None) or self.preflight()["prepared_request_id"]
        tool_calls = [
            {"id": f"c{n}", "name": name, "arguments": arguments}
            for n, (name, arguments) in enumerate(calls)
        ]
        request = {
            "prepared_request_id": prepared,
            "fence_token": self.fence,
            "response": {"tool_calls": tool_calls},
            **body,
        }
        return dict(self.runtime.propose(TENANT, "s-1", request))

    def receipt(self, pending_call_id: str, **body: Any) -> dict[str, Any]:
        request = {"pending_call_id": pending_call_id, "fence_token": self.fence, **body}
        request.setdefault("outcome", "success")
        return dict(self.runtime.receipt(TENANT, "s-1", request))

    def commit(self, name: str, arguments: dict[str, Any] | None = None, **receipt: Any) -> str:
        """Propose one call, which must be allowed, and commit it; answer its pending id."""
        answer = self.propose((name, arguments or {}))
        call = answer["calls"][0]
        assert call["decision"] == "allow", call
        receipt.setdefault("evidence", {"kind": "ack", "acknowledged": True})
        self.receipt(call["pending_call_id"], **receipt)
        return str(call["pending_call_id"])

    def session(self) -> dict[str, Any]:
        return dict(self.runtime.get_session(TENANT, "s-1")["session"])


def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def test_a_proposal_with_a_stale_fence_token_is_refused_and_changes_nothing() -> None:
    """Mutant: the fence and lease check of proposals deleted."""
    driver = Driver(refund_contract())
    prepared = driver.preflight()["prepared_request_id"]
    driver.runtime.recover(TENANT, "s-1", {})
    error = refused(lambda: driver.propose(("verify_customer", {}), prepared_request_id=prepared))
    assert (error.status, error.code) == (409, "FENCE_MISMATCH")
    assert error.details["current_fence_token"] == 2
    driver.fence = 2
    assert driver.propose(("verify_customer", {}), prepared_request_id=prepared)["decision"] == (
        "allow"
    )


def test_a_proposal_after_its_lease_expired_is_refused() -> None:
    """Mutant: the fence and lease check of proposals deleted."""
    driver = Driver(refund_contract(), lease_ttl_s=30.0)
    prepared = driver.preflight()["prepared_request_id"]
    driver.world.clock.advance(31)
    error = refused(lambda: driver.propose(("verify_customer", {}), prepared_request_id=prepared))
    assert (error.status, error.code) == (409, "LEASE_EXPIRED")


def test_max_calls_per_tool_of_one_allows_the_first_call_and_blocks_the_second() -> None:
    """Mutant: the per-tool counter compared with >= one call too early."""
    limits = {"max_calls_per_tool": {"lookup_order": 1}}
    driver = Driver(refund_contract(session_limits=limits))
    first = driver.propose(("lookup_order", {"id": 1}))["calls"][0]
    assert first["decision"] == "allow" and first["reasons"] == []
    driver.receipt(first["pending_call_id"])
    second = driver.propose(("lookup_order", {"id": 2}))["calls"][0]
    assert second["decision"] == "block"
    assert [reason["code"] for reason in second["reasons"]] == ["max_calls_per_tool_exceeded"]


def two_role_workflow(workflow_id: str) -> dict[str, Any]:
    return {
        "type": "root",
        "workflow_id": workflow_id,
        "role": "planner",
        "compiled_workflow": {
            "schema_version": "1.0",
            "workflow": "refunds",
            "roles": [{"name": "planner"}, {"name": "refunder"}],
            "handoffs": [{"from": "planner", "to": "refunder"}],
        },
    }


def test_recreating_a_workflow_session_naming_another_workflow_is_a_mismatch() -> None:
    """Mutant: a create naming another workflow_id joins the existing session."""
    world = World(WorldSpec())
    body = {"session_id": "root-1", "agent": "planner-bot", "workflow": two_role_workflow("wf-a")}
    assert world.runtime.create_session(TENANT, body)[0] == 201
    assert world.runtime.create_session(TENANT, body)[0] == 200
    other = {**body, "workflow": two_role_workflow("wf-b")}
    error = refused(lambda: world.runtime.create_session(TENANT, other))
    assert (error.status, error.code) == (409, "SESSION_EXISTS_MISMATCH")
    assert refused(lambda: world.runtime.get_workflow(TENANT, "wf-b")).status == 404


def test_a_committed_tool_that_declares_binds_sets_the_sessions_bindings() -> None:
    """Mutant: bindings never recorded."""
    tools = refund_tools()
    tools["verify_customer"]["binds"] = {"customer_id": "$.customer_id"}
    driver = Driver(refund_contract(tools=tools))
    assert driver.session()["bindings"] == {}
    driver.commit(
        "verify_customer", {"email": "a@b.c"}, output={"verified": True, "customer_id": "c-42"}
    )
    assert driver.session()["bindings"] == {"customer_id": "c-42"}


def test_retrying_the_receipt_just_sent_still_answers_it_after_old_calls_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutant: the history trim forgets every receipted call, not only the oldest."""
    monkeypatch.setattr(receipts, "HISTORY_KEPT", 4)
    monkeypatch.setattr(cycle, "HISTORY_KEPT", 4)
    driver = Driver(refund_contract(session_limits={}))
    ids = []
    for n in range(2 * 4 + 1):  # the ninth receipt makes the session forget its oldest
        answer = driver.propose(("lookup_order", {"id": n}))
        pending = answer["calls"][0]["pending_call_id"]
        ids.append((pending, driver.receipt(pending)))
    last, first_answer = ids[-1]
    assert driver.receipt(last) == first_answer
    oldest = ids[0][0]
    assert refused(lambda: driver.receipt(oldest)).code == "PENDING_CALL_NOT_FOUND"


def test_a_session_keeps_exactly_its_256_newest_prepared_requests() -> None:
    """Mutants: prepared requests never forgotten; a cap of 255."""
    assert cycle.PREPARED_KEPT_PER_SESSION == 256
    driver = Driver()  # development, no contract: every preflight allows
    prepared = [driver.preflight()["prepared_request_id"] for _ in range(257)]
    error = refused(lambda: driver.propose(("any_tool", {}), prepared_request_id=prepared[0]))
    assert (error.status, error.code) == (404, "PREPARED_REQUEST_NOT_FOUND")
    answer = driver.propose(("any_tool", {}), prepared_request_id=prepared[1])
    assert answer["decision"] == "allow"


def test_a_refused_phase_transition_labels_the_refused_target_and_where_it_came_from() -> None:
    """Mutant: the label's value or metadata dropped."""
    tools = refund_tools()
    tools["lookup_order"]["transitions"] = {"advances_to": "refunded"}  # start -> refunded: no
    driver = Driver(refund_contract(tools=tools))
    driver.commit("lookup_order", {"id": 1})
    session = driver.session()
    assert session["phase"]["current"] == "start" and session["state_version"] == 1
    label = [item for item in session["labels"] if item["key"] == "phase_transition_refused"]
    assert len(label) == 1 and label[0]["system"] is True
    assert label[0]["value"] == "refunded"
    assert label[0]["metadata"] == {"from": "start", "tool": "lookup_order"}


def test_forbidden_in_state_names_the_tool_whose_forbids_after_applies() -> None:
    """Mutant: the detail names the latest committed tool (and 500s if it has no contract)."""
    tools = refund_tools()
    tools["verify_customer"]["forbids_after"] = ["delete_account"]
    tools["delete_account"]["gate"] = "allow"
    driver = Driver(refund_contract(tools=tools, unmatched_policy="allow"))
    driver.commit("verify_customer", {"email": "a@b.c"}, output={"verified": True})
    driver.commit("lookup_order", {"id": 1})
    driver.commit("no_contract_tool", {})  # committed last, and has no contract
    call = driver.propose(("delete_account", {}))["calls"][0]
    forbidden = [reason for reason in call["reasons"] if reason["code"] == "forbidden_in_state"]
    assert len(forbidden) == 1 and "verify_customer" in forbidden[0]["detail"]
    assert "no_contract_tool" not in forbidden[0]["detail"]
    assert "lookup_order" not in forbidden[0]["detail"]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_cost_usd": 0}, (0.0, None)),
        ({"max_cost_usd": 0.5}, (0.5, None)),
        ({"max_sessions": 1}, (None, 1)),
    ],
)
def test_workflow_limits_at_their_smallest_allowed_values_compile(
    limits: dict[str, Any], expected: tuple[float | None, int | None]
) -> None:
    """Mutants: a max_cost_usd below 1, or max_sessions of 1, refused."""
    raw = {**two_role_workflow("w")["compiled_workflow"], "limits": limits}
    spec = compile_workflow(raw)
    assert (spec.max_cost_usd, spec.max_sessions) == expected


def test_compile_workflow_refuses_a_role_without_a_name_at_its_pointer() -> None:
    """Mutant: the role's missing name not reported."""
    raw = {**two_role_workflow("w")["compiled_workflow"]}
    raw["roles"] = [{"name": "planner"}, {"session_contract": None}]
    raw["handoffs"] = []
    with pytest.raises(CompileError) as caught:
        compile_workflow(raw)
    assert [(e.path, e.keyword) for e in caught.value.errors] == [("/roles/1/name", "required")]


def test_costs_add_up_rounded_to_ten_decimals_in_the_session_and_its_workflow() -> None:
    """Mutant: cost_usd and cost_used_usd not rounded (0.1 + 0.2 != 0.3)."""
    world = World(WorldSpec())
    body = {"session_id": "root-1", "agent": "planner-bot", "workflow": two_role_workflow("wf-a")}
    world.runtime.create_session(TENANT, body)
    child = {"type": "child", "workflow_id": "wf-a", "role": "refunder"}
    world.runtime.create_session(TENANT, {"session_id": "child-1", "agent": "r", "workflow": child})

    def spend(session_id: str, cost: float) -> None:
        prepared = world.runtime.preflight(TENANT, session_id, {"fence_token": 1})
        world.runtime.propose(
            TENANT,
            session_id,
            {
                "prepared_request_id": prepared["prepared_request_id"],
                "fence_token": 1,
                "response": {"tool_calls": []},
                "usage": {"cost_usd": cost},
            },
        )

    spend("root-1", 0.1)
    spend("root-1", 0.2)
    spend("child-1", 0.6)
    session = world.runtime.get_session(TENANT, "root-1")["session"]
    assert session["counters"]["cost_usd"] == 0.3  # not 0.30000000000000004
    budget = world.runtime.get_workflow(TENANT, "wf-a")["workflow"]["budget"]
    assert budget["cost_used_usd"] == 0.9  # 0.3 + 0.6, not 0.8999999999999999


def test_updated_at_follows_a_proposal_a_state_change_and_a_label() -> None:
    """Mutant: updated_at left at creation time by one of these writes."""
    driver = Driver(refund_contract())
    created = driver.session()["updated_at"]
    driver.world.clock.advance(10)
    pending = driver.propose(("verify_customer", {}))["calls"][0]["pending_call_id"]
    after_proposal = driver.session()["updated_at"]
    assert after_proposal > created
    driver.world.clock.advance(10)
    driver.receipt(pending, output={"verified": True})
    after_commit = driver.session()["updated_at"]
    assert after_commit > after_proposal
    driver.world.clock.advance(10)
    driver.runtime.add_label(TENANT, "s-1", {"key": "ticket", "value": "T-1"})
    after_label = driver.session()["updated_at"]
    assert after_label > after_commit
    driver.world.clock.advance(10)
    driver.runtime.set_tool_filter(TENANT, "s-1", {"deny": ["issue_refund"]})
    assert driver.session()["updated_at"] > after_label


def test_loop_detection_sees_a_call_more_than_1024_committed_calls_back() -> None:
    """Mutant: the loop window cut to the newest 1,024 committed calls."""
    limits = {"loop_detection": {"window": 1500, "threshold": 2}}
    driver = Driver(refund_contract(session_limits=limits, unmatched_policy="allow"))
    driver.commit("lookup_order", {"id": "same"})
    for n in range(1100):
        driver.commit("other_tool", {"n": n})
    call = driver.propose(("lookup_order", {"id": "same"}))["calls"][0]
    assert [reason["code"] for reason in call["reasons"]] == ["loop_detected"]
    fresh = driver.propose(("lookup_order", {"id": "new"}))["calls"][0]
    assert fresh["decision"] == "allow"


def test_a_second_kill_of_any_kind_leaves_the_state_version_where_the_first_put_it() -> None:
    """Mutant: the early return of kill() for a session already killed removed."""
    world = World(WorldSpec())
    body = {"session_id": "root-1", "agent": "planner-bot", "workflow": two_role_workflow("wf-a")}
    world.runtime.create_session(TENANT, body)
    world.runtime.kill(TENANT, "root-1", {"reason": "first"})
    after_first = world.runtime.get_session(TENANT, "root-1")["session"]
    assert after_first["state_version"] == 1
    world.runtime.kill(TENANT, "root-1", {"reason": "second"})
    world.runtime.kill_workflow(TENANT, "wf-a", {"reason": "workflow"})
    world.runtime.scenario_kill(TENANT, "root-1", "scenario")
    session = world.runtime.get_session(TENANT, "root-1")["session"]
    assert session["state_version"] == 1
    assert session["killed"] == after_first["killed"]
