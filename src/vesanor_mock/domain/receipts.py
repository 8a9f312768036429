"""Receipts: record a tool's outcome and commit it when the evidence rule is met (§3.5)."""

from __future__ import annotations

from typing import Any

from ..errors import Conflict, NotFound
from . import policy
from .contracts import ToolContract
from .models import HISTORY_KEPT, CommittedCall, PendingCall, Receipt, Session
from .sessionops import (
    Context,
    add_label,
    bump,
    ensure_fence,
    ensure_not_killed,
    touch,
    trip_breaker,
)
from .views import phase_view, unresolved_ids


def receipt(ctx: Context, session: Session, body: dict[str, Any]) -> dict[str, Any]:
    """Record a tool's outcome and commit it when the evidence rule is met (§3.5)."""
    ensure_not_killed(session)
    ensure_fence(ctx, session, body["fence_token"])
    pending_id = body["pending_call_id"]
    pending = session.pending.get(pending_id)
    if pending is None:
        raise NotFound(
            f"no pending call {pending_id!r} in this session",
            code="PENDING_CALL_NOT_FOUND",
            details={"pending_call_id": pending_id},
        )
    previous = session.receipts.get(pending_id)
    if previous is not None:
        if previous.request == body:
            return dict(previous.answer)
        raise Conflict(
            f"pending call {pending_id!r} already has a different receipt",
            code="RECEIPT_CONFLICT",
            details={"pending_call_id": pending_id, "receipt_id": previous.receipt_id},
        )
    reason = _commit_reason(session, pending, body)
    receipt_id = ctx.ids.new("rcpt")
    pending.receipt_id = receipt_id
    session.unresolved.pop(pending_id, None)
    if reason == "committed":
        _commit(ctx, session, pending, body.get("output"))
    else:
        pending.status = "uncommitted"
        if body["outcome"] in ("error", "timeout"):
            _count_error(ctx, session)
    touch(ctx, session)
    answer = {
        "receipt_id": receipt_id,
        "pending_call_id": pending_id,
        "committed": reason == "committed",
        "commit_reason": reason,
        "state_version": session.state_version,
        "phase": phase_view(session),
        "pending_remaining": len(unresolved_ids(session)),
        "session_status": session.status,
    }
    session.receipts[pending_id] = Receipt(receipt_id=receipt_id, request=body, answer=answer)
    if len(session.pending) > 2 * HISTORY_KEPT:
        _forget_oldest_resolved(session)
    return dict(answer)


def _commit_reason(session: Session, pending: PendingCall, body: dict[str, Any]) -> str:
    outcome = body["outcome"]
    if session.authority_state == "compromised":
        return "session_compromised"
    if outcome == "error":
        return "outcome_error"
    if outcome == "timeout":
        return "outcome_timeout"
    acknowledged = (body.get("evidence") or {}).get("acknowledged") is True
    if pending.commit_requirement == "acknowledged" and not acknowledged:
        return "not_acknowledged"
    return "committed"


def _commit(ctx: Context, session: Session, pending: PendingCall, output: Any) -> None:
    """Apply one committed call to the authoritative state."""
    pending.status = "committed"
    counters = session.counters
    counters.tool_calls += 1
    counters.calls_per_tool[pending.tool_name] = (
        counters.calls_per_tool.get(pending.tool_name, 0) + 1
    )
    counters.consecutive_errors = 0
    session.committed.append(CommittedCall(pending.tool_name, pending.arguments, output))
    session.latest_output[pending.tool_name] = output
    if len(session.committed) > 2 * HISTORY_KEPT:
        del session.committed[:-HISTORY_KEPT]
    contract = session.contract
    if contract is not None and pending.tool_name in contract.tools:
        phase, refused = policy.phase_after_commit(contract, session.phase, pending.tool_name)
        if refused:
            add_label(
                ctx,
                session,
                "phase_transition_refused",
                _phase_target(contract, pending),
                {"from": session.phase, "tool": pending.tool_name},
                system=True,
            )
        session.phase = phase
        session.forbidden.update(policy.forbids_after(contract, pending.tool_name))
        tool = contract.tools[pending.tool_name]
        session.bindings.update(_bindings(tool, pending.arguments, output))
    bump(ctx, session)


def _bindings(tool: ToolContract, arguments: Any, output: Any) -> dict[str, Any]:
    """The values a committed call binds (its `binds`, from its arguments or output)."""
    found: dict[str, Any] = {}
    for bind in tool.binds:
        exists, value = bind.read(arguments, output)
        if exists:
            found[bind.name] = value
    return found


def _phase_target(contract: Any, pending: PendingCall) -> str | None:
    """The phase a committed tool tried to advance to."""
    tool = contract.tools.get(pending.tool_name)
    return tool.advances_to if tool is not None else None


def _count_error(ctx: Context, session: Session) -> None:
    """Consecutive failed outcomes feed the circuit breaker (§4.4)."""
    counters = session.counters
    counters.consecutive_errors += 1
    limit = session.contract.limits.breaker_consecutive_errors if session.contract else None
    trip_breaker(ctx, session, counters.consecutive_errors, limit, "tool errors")


def _forget_oldest_resolved(session: Session) -> None:
    """Keep a long session's memory flat: drop its oldest receipted calls and receipts."""
    excess = len(session.pending) - HISTORY_KEPT
    for pending_id in [p for p, call in session.pending.items() if call.status != "pending"]:
        if excess <= 0:
            break
        del session.pending[pending_id]
        session.receipts.pop(pending_id, None)
        excess -= 1
