"""The first half of the governed cycle: preflight and proposal (PROTOCOL.md §3.3, §3.4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import parse_timestamp
from ..errors import Conflict, FieldError, NotFound, ValidationFailed
from . import policy
from .models import HISTORY_KEPT, PendingCall, Session
from .policy import PolicyView, Reason
from .sessionops import (
    Context,
    add_label,
    ensure_fence,
    ensure_state_version,
    ensure_writable,
    over_limit,
    stale,
    touch,
    trip_breaker,
)
from .views import phase_view, unresolved_ids

# A scenario rule's forced block for one tool call (check 10 of §4.2), or None.
ForceBlock = Callable[[str], Reason | None]

PREPARED_KEPT_PER_SESSION = 256


@dataclass
class Prepared:
    """A single-use ticket from preflight, bound to a state version, with a TTL (§3.3)."""

    prepared_request_id: str
    state_version: int
    expires_at: str
    consumed: bool = False
    blocked: tuple[Reason, ...] = ()
    narrowed: tuple[dict[str, str], ...] = ()


NO_PLAN = Reason("no_approved_plan", "No approved governance plan for this agent and environment")
ARTIFACT_INVALID = Reason(
    "approved_artifact_invalid",
    "The approved governance plan for this agent and environment has a broken artifact",
)
FAIL_CLOSED_CODES = (NO_PLAN.code, ARTIFACT_INVALID.code)


def fails_closed(ctx: Context, session: Session) -> Reason | None:
    """Without any contract, staging and production block everything (§2.1): the reason."""
    if (
        session.contract is not None
        or session.environment == "development"
        or not ctx.options.fail_closed_without_plan
    ):
        return None
    return ARTIFACT_INVALID if session.attachment == "artifact_invalid" else NO_PLAN


def preflight(
    ctx: Context,
    session: Session,
    body: dict[str, Any],
    extra_limits: Callable[[Session], list[Reason]] | None = None,
) -> dict[str, Any]:
    """Bind a prepared request to the current state version (§3.3).

    An idempotent replay is answered only after the kill, compromise and fence checks: a
    replay never answers `allow` for a dead session or an old fence.
    """
    ensure_writable(session)
    ensure_fence(ctx, session, body["fence_token"])
    key = body.get("idempotency_key")
    if key is not None and key in session.preflight_answers:
        first_body, answer = session.preflight_answers[key]
        if first_body == body:
            return dict(answer)
        raise ValidationFailed(
            [
                FieldError(
                    "/idempotency_key", "already used with a different request body", "idempotency"
                )
            ]
        )
    ensure_state_version(session, body.get("expected_state_version"))
    unresolved = unresolved_ids(session)
    if unresolved and ctx.options.require_receipts_before_preflight:
        raise Conflict(
            f"{len(unresolved)} pending call(s) wait for a receipt",
            code="PENDING_CALLS_UNRESOLVED",
            details={"pending_call_ids": unresolved},
        )
    answer = _prepare(ctx, session, body, extra_limits)
    if key is not None:
        session.preflight_answers[key] = (body, answer)
        if len(session.preflight_answers) > HISTORY_KEPT:
            del session.preflight_answers[next(iter(session.preflight_answers))]
    return dict(answer)


def _prepare(
    ctx: Context,
    session: Session,
    body: dict[str, Any],
    extra_limits: Callable[[Session], list[Reason]] | None,
) -> dict[str, Any]:
    view = PolicyView.of(session)
    offered = (body.get("request") or {}).get("tools")
    visible, narrowed = policy.narrow(session.contract, view, offered)
    closed = fails_closed(ctx, session)
    if closed is not None:
        reasons = [closed]
    else:
        reasons = policy.preflight_limits(session.contract, view, session.counters.steps)
        if extra_limits is not None:
            reasons += extra_limits(session)
    if not reasons:
        session.counters.steps += 1
    prepared = Prepared(
        prepared_request_id=ctx.ids.new("prep"),
        state_version=session.state_version,
        expires_at=ctx.later(ctx.options.prepared_ttl_s),
        blocked=tuple(reasons),
        narrowed=tuple(narrowed),
    )
    _remember(session, prepared)
    touch(ctx, session)
    return {
        "prepared_request_id": prepared.prepared_request_id,
        "state_version": session.state_version,
        "expires_at": prepared.expires_at,
        "decision": "block" if reasons else "allow",
        "reasons": [r.to_dict() for r in reasons],
        "visible_tools": visible,
        "narrowed": narrowed,
        "phase": phase_view(session),
        "enforcement": session.enforcement,
    }


def _remember(session: Session, prepared: Prepared) -> None:
    """Keep the newest prepared requests; the oldest are forgotten past a bound."""
    session.prepared[prepared.prepared_request_id] = prepared
    if len(session.prepared) > PREPARED_KEPT_PER_SESSION:
        del session.prepared[next(iter(session.prepared))]


def _take_prepared(ctx: Context, session: Session, prepared_id: str) -> Prepared:
    prepared = session.prepared.get(prepared_id)
    if not isinstance(prepared, Prepared):
        raise NotFound(
            f"no prepared request {prepared_id!r} for this session",
            code="PREPARED_REQUEST_NOT_FOUND",
            details={"prepared_request_id": prepared_id},
        )
    if prepared.consumed:
        raise Conflict(
            f"prepared request {prepared_id!r} was already used",
            code="PREPARED_REQUEST_CONSUMED",
            details={"prepared_request_id": prepared_id},
        )
    if ctx.clock.now() >= parse_timestamp(prepared.expires_at):
        raise Conflict(
            f"prepared request {prepared_id!r} expired at {prepared.expires_at}",
            code="PREPARED_REQUEST_EXPIRED",
            details={"prepared_request_id": prepared_id, "expires_at": prepared.expires_at},
        )
    if prepared.state_version != session.state_version:
        raise stale(session)
    return prepared


def _check_unique_ids(tool_calls: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for index, call in enumerate(tool_calls):
        if call["id"] in seen:
            raise ValidationFailed(
                [
                    FieldError(
                        f"/response/tool_calls/{index}/id",
                        f"duplicate tool call id {call['id']!r}",
                        "uniqueItems",
                    )
                ]
            )
        seen.add(call["id"])


def propose(
    ctx: Context,
    session: Session,
    body: dict[str, Any],
    force_block: ForceBlock | None = None,
) -> dict[str, Any]:
    """Judge a proposal's tool calls and register the allowed ones as pending (§3.4)."""
    tool_calls: list[dict[str, Any]] = body["response"]["tool_calls"]
    ensure_writable(session)
    ensure_fence(ctx, session, body["fence_token"])
    prepared = _take_prepared(ctx, session, body["prepared_request_id"])
    _check_unique_ids(tool_calls)
    over_limit(
        "max_pending_calls_per_session",
        ctx.options.max_pending_calls_per_session,
        len(session.unresolved),
        len(tool_calls),
        f"session {session.session_id!r} holds its most pending calls",
    )
    prepared.consumed = True
    cost = (body.get("usage") or {}).get("cost_usd")
    if cost:
        session.counters.cost_usd = round(session.counters.cost_usd + cost, 10)
    decisions = {d["tool_call_id"]: d for d in body.get("checkpoint_decisions") or []}
    for tool_call_id, decision in decisions.items():
        add_label(
            ctx,
            session,
            f"checkpoint:{tool_call_id}",
            decision.get("approved"),
            dict(decision),
            system=True,
        )
    proposal_id = ctx.ids.new("prop")
    calls, runs = _judge_all(ctx, session, prepared, tool_calls, decisions, force_block)
    tripped = _count_blocks(ctx, session, calls)
    if tripped:
        _refuse_all(session, calls, runs)
    _register(ctx, session, proposal_id, tool_calls, calls, runs)
    touch(ctx, session)
    answer: dict[str, Any] = {
        "proposal_id": proposal_id,
        "decision": _overall([call["decision"] for call in calls]),
        "calls": calls,
        "state_version": session.state_version,
        "phase": phase_view(session),
        "session_status": session.status,
    }
    if session.enforcement in ("monitor", "advisory"):
        answer["shadow_delta"] = _shadow_delta(session, prepared, calls)
    return answer


def _overall(verdicts: list[str]) -> str:
    blocked = verdicts.count("block")
    if blocked == 0:
        return "allow"
    return "block" if blocked == len(verdicts) else "partial"


def _judge_all(
    ctx: Context,
    session: Session,
    prepared: Prepared,
    tool_calls: list[dict[str, Any]],
    decisions: dict[str, dict[str, Any]],
    force_block: ForceBlock | None,
) -> tuple[list[dict[str, Any]], list[bool]]:
    """Judge every call in order: (the Call entries, whether each call may run)."""
    view = PolicyView.of(session)
    contract = session.contract
    earlier: list[tuple[str, dict[str, Any]]] = []
    calls: list[dict[str, Any]] = []
    runs: list[bool] = []
    for call in tool_calls:
        name, arguments, decision = call["name"], call["arguments"], decisions.get(call["id"])
        if prepared.blocked:
            reasons = list(prepared.blocked)
        elif (closed := fails_closed(ctx, session)) is not None:
            reasons = [closed]
        else:
            reasons = policy.judge_call(
                contract, view, name, arguments, earlier=earlier, checkpoint_decision=decision
            )
        forced = force_block(name) if force_block is not None else None
        if forced is not None:
            reasons.append(forced)
        enforced = bool(reasons) and (
            session.enforcement == "protective" or any(r.code in FAIL_CLOSED_CODES for r in reasons)
        )
        tool = contract.tools.get(name) if contract is not None else None
        runs.append(not enforced)
        if not enforced:
            earlier.append((name, arguments))
        entry: dict[str, Any] = {
            "tool_call_id": call["id"],
            "tool_name": name,
            "decision": "block" if reasons else "allow",
            "enforced": enforced,
            "reasons": [r.to_dict() for r in reasons],
            "pending_call_id": None,
            "commit_requirement": tool.commit_requirement if tool is not None else "none",
            "evidence_class": tool.evidence_class if tool is not None else "unverifiable",
        }
        checkpoint = policy.checkpoint_info(contract, name, decision) if contract else None
        if checkpoint is not None:
            entry["checkpoint"] = checkpoint
        calls.append(entry)
    return calls, runs


def _refuse_all(session: Session, calls: list[dict[str, Any]], runs: list[bool]) -> None:
    """The proposal killed the session: nothing it would have let run may run (§3.4)."""
    reason = killed_reason(session)
    for index, call in enumerate(calls):
        if runs[index]:
            call["decision"] = "block"
            call["enforced"] = True
            call["reasons"] = [*call["reasons"], reason.to_dict()]
            runs[index] = False


def killed_reason(session: Session) -> Reason:
    """The `session_killed` reason of a call refused because its proposal killed the session."""
    why = session.killed.reason if session.killed is not None else None
    detail = "The circuit breaker killed the session" + (f": {why}" if why else "")
    return Reason("session_killed", detail)


def _register(
    ctx: Context,
    session: Session,
    proposal_id: str,
    tool_calls: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    runs: list[bool],
) -> None:
    """Register a pending call for every call that may run, for the whole proposal at once."""
    for call, entry, may_run in zip(tool_calls, calls, runs, strict=True):
        if not may_run:
            continue
        pending = PendingCall(
            pending_call_id=ctx.ids.new("pc"),
            proposal_id=proposal_id,
            tool_call_id=call["id"],
            tool_name=call["name"],
            arguments=call["arguments"],
            commit_requirement=entry["commit_requirement"],
            evidence_class=entry["evidence_class"],
            status="pending",
            created_at=ctx.now(),
        )
        entry["pending_call_id"] = pending.pending_call_id
        session.pending[pending.pending_call_id] = pending
        session.unresolved[pending.pending_call_id] = None


def _counts_as_block(call: dict[str, Any]) -> bool:
    """An enforced block, unless its only reason is a request for approval (§3.4)."""
    if not call["enforced"]:
        return False
    return any(reason["code"] != "checkpoint_required" for reason in call["reasons"])


def _count_blocks(ctx: Context, session: Session, calls: list[dict[str, Any]]) -> bool:
    """Consecutive enforced blocks feed the circuit breaker (§4.4); True when it tripped."""
    counters = session.counters
    blocked = any(_counts_as_block(call) for call in calls)
    counters.consecutive_blocks = counters.consecutive_blocks + 1 if blocked else 0
    limit = session.contract.limits.breaker_consecutive_blocks if session.contract else None
    was_active = session.status == "active"
    trip_breaker(ctx, session, counters.consecutive_blocks, limit, "blocked proposals")
    return was_active and session.status == "killed"


def _shadow_delta(
    session: Session, prepared: Prepared, calls: list[dict[str, Any]]
) -> dict[str, Any]:
    """What enforcement would have done, for monitor and advisory sessions."""
    blocked = [
        {
            "tool_name": call["tool_name"],
            "reason": call["reasons"][0]["code"],
            "detail": call["reasons"][0]["detail"],
        }
        for call in calls
        if call["decision"] == "block"
    ]
    phase = phase_view(session)
    return {
        "would_have_blocked": blocked,
        "would_have_narrowed": [dict(n) for n in prepared.narrowed],
        "current_phase": phase["current"],
        "legal_next_phases": phase["legal_next"],
    }
