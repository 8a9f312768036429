"""A long session keeps its memory flat: old resolved calls go, what the policy needs stays."""

from __future__ import annotations

from typing import Any

import pytest

from vesanor_mock.domain import cycle, receipts
from vesanor_mock.domain.world import World, WorldSpec

from .contracts_examples import refund_contract

TENANT = "default"


def one_cycle(world: World, sid: str, name: str, output: Any = None, key: str | None = None) -> str:
    """Preflight, propose one call, commit it; answer the pending call id."""
    runtime = world.runtime
    body: dict[str, Any] = {"fence_token": 1}
    if key is not None:
        body["idempotency_key"] = key
    prep = runtime.preflight(TENANT, sid, body)
    proposal = runtime.propose(
        TENANT,
        sid,
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": 1,
            "response": {"tool_calls": [{"id": "c", "name": name, "arguments": {}}]},
        },
    )
    pending = str(proposal["calls"][0]["pending_call_id"])
    receipt = {"pending_call_id": pending, "fence_token": 1, "outcome": "success"}
    if output is not None:
        receipt["output"] = output
    runtime.receipt(TENANT, sid, receipt)
    return pending


@pytest.fixture
def small_history(monkeypatch: pytest.MonkeyPatch) -> int:
    """Keep 4 resolved records instead of the default."""
    monkeypatch.setattr(receipts, "HISTORY_KEPT", 4)
    monkeypatch.setattr(cycle, "HISTORY_KEPT", 4)
    return 4


def test_a_long_session_forgets_its_oldest_resolved_calls_and_keeps_the_policy_working(
    small_history: int,
) -> None:
    world = World(WorldSpec())
    _, body = world.runtime.create_session(
        TENANT,
        {
            "agent": "refund-bot",
            "contract": {"compiled_session": refund_contract(session_limits={})},
        },
    )
    sid = body["session"]["session_id"]
    one_cycle(world, sid, "verify_customer", {"verified": True})
    ids = [one_cycle(world, sid, "lookup_order", key=f"k{n}") for n in range(20)]
    session = world.runtime.session(TENANT, sid)
    assert len(session.pending) <= 2 * small_history
    assert len(session.receipts) <= 2 * small_history
    assert len(session.committed) <= 2 * small_history
    assert len(session.preflight_answers) <= small_history
    assert list(session.pending)[-1] == ids[-1]
    assert session.counters.tool_calls == 21
    assert session.state_version == 21
    # verify_customer's commit fell out of the history; its output still satisfies issue_refund
    prep = world.runtime.preflight(TENANT, sid, {"fence_token": 1})
    proposal = world.runtime.propose(
        TENANT,
        sid,
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": 1,
            "response": {
                "tool_calls": [{"id": "r", "name": "issue_refund", "arguments": {"amount": 5}}]
            },
        },
    )
    assert proposal["calls"][0]["decision"] == "allow"
