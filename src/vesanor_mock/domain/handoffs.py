"""Handoffs between workflow roles, and the workflow kill (PROTOCOL.md §3.13–§3.16).

    offered --(a child session accepts it)--> accepted
    offered | accepted --complete--> completed          (final)
    offered | accepted --reclaim---> reclaimed          (final)

Acceptance happens in `workflows.admit`. An open handoff (offered or accepted) holds its
resource claims; completing or reclaiming it frees them. Expiry changes no status by itself:
it only makes an accepted handoff reclaimable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Conflict, FieldError, Unprocessable, ValidationFailed
from .models import Handoff, Killed, Session, Workflow
from .sessionops import Context, ensure_fence, ensure_writable, kill
from .workflows import ensure_active, find_handoff

Answer = dict[str, Any]


def offer(
    ctx: Context, session: Session, workflow: Workflow | None, body: dict[str, Any]
) -> Answer:
    """§3.13: offer work from this session's role to another role."""
    ensure_writable(session)
    ensure_fence(ctx, session, body["fence_token"])
    membership = session.workflow
    if workflow is None or membership is None:
        raise Conflict(
            f"session {session.session_id!r} is not in a workflow",
            code="NOT_IN_WORKFLOW",
            details={"session_id": session.session_id},
        )
    ensure_active(workflow)
    to_role = body["to_role"]
    _ensure_route(workflow, membership.role, to_role)
    claims = list(body.get("resource_claims") or [])
    _ensure_unclaimed(workflow, claims)
    now = ctx.now()
    ttl = body.get("ttl_s")
    if ttl is not None and ttl > ctx.seconds_left():
        message = (
            f"ttl_s {ttl:g} would end after 9999-12-31T23:59:59.999Z, the last instant of "
            f"the clock ({ctx.seconds_left():.3f} s from now)"
        )
        raise ValidationFailed([FieldError("/ttl_s", message, "maximum")])
    handoff = Handoff(
        handoff_id=ctx.ids.new("hof"),
        workflow_id=workflow.workflow_id,
        from_session_id=session.session_id,
        from_role=membership.role,
        to_role=to_role,
        payload=dict(body.get("payload") or {}),
        resource_claims=claims,
        created_at=now,
        expires_at=ctx.later(ttl) if ttl is not None else None,
        updated_at=now,
    )
    workflow.handoffs[handoff.handoff_id] = handoff
    return {"handoff": handoff.to_dict()}


def _ensure_route(workflow: Workflow, from_role: str, to_role: str) -> None:
    """422 HANDOFF_NOT_ALLOWED unless the workflow declares `from_role -> to_role`."""
    if (from_role, to_role) not in workflow.allowed_handoffs:
        raise Unprocessable(
            f"the workflow declares no handoff from {from_role!r} to {to_role!r}",
            code="HANDOFF_NOT_ALLOWED",
            details={
                "from_role": from_role,
                "to_role": to_role,
                "allowed_to": [t for f, t in workflow.allowed_handoffs if f == from_role],
            },
        )


def _ensure_unclaimed(workflow: Workflow, claims: list[str]) -> None:
    """409 RESOURCE_CONFLICT for the first claim an open handoff of the workflow holds."""
    for resource in claims:
        for held in workflow.handoffs.values():
            if held.is_open and resource in held.resource_claims:
                raise Conflict(
                    f"resource {resource!r} is claimed by open handoff {held.handoff_id!r}",
                    code="RESOURCE_CONFLICT",
                    details={"resource": resource, "handoff_id": held.handoff_id},
                )


def _state_conflict(handoff: Handoff, action: str) -> Conflict:
    return Conflict(
        f"handoff {handoff.handoff_id!r} is {handoff.status}; it cannot be {action}",
        code="HANDOFF_STATE_CONFLICT",
        details={"handoff_id": handoff.handoff_id, "status": handoff.status},
    )


def _close(ctx: Context, handoff: Handoff, status: str) -> None:
    """Move an open handoff to a final state; its claims are free from now on."""
    handoff.status = status
    handoff.updated_at = ctx.now()


def complete(ctx: Context, workflow: Workflow, handoff_id: str, body: dict[str, Any]) -> Answer:
    """§3.14: offered or accepted -> completed; the same completion again answers the first."""
    handoff = find_handoff(workflow, handoff_id)
    request = {"outcome": body.get("outcome", "succeeded"), "result": body.get("result")}
    if handoff.completion is not None and handoff.completion[0] == request:
        return dict(handoff.completion[1])
    if not handoff.is_open:
        raise _state_conflict(handoff, "completed")
    handoff.outcome = request["outcome"]
    handoff.result = request["result"]
    _close(ctx, handoff, "completed")
    answer = {"handoff": handoff.to_dict()}
    handoff.completion = (request, answer)
    return dict(answer)


def reclaimable(ctx: Context, handoff: Handoff, child: Session | None) -> bool:
    """Offered; or accepted with its child killed; or past its `expires_at` (§3.15)."""
    if handoff.status == "offered" or ctx.has_passed(handoff.expires_at):
        return True
    return child is not None and child.status == "killed"


def reclaim(
    ctx: Context,
    workflow: Workflow,
    handoff_id: str,
    body: dict[str, Any],
    lookup: Callable[[str], Session],
) -> Answer:
    """§3.15: take an open handoff back; a still-active child is killed."""
    handoff = find_handoff(workflow, handoff_id)
    if not handoff.is_open:
        raise _state_conflict(handoff, "reclaimed")
    child = lookup(handoff.child_session_id) if handoff.child_session_id else None
    if not reclaimable(ctx, handoff, child):
        raise Conflict(
            f"handoff {handoff_id!r} is accepted by an active session and has not expired",
            code="HANDOFF_NOT_RECLAIMABLE",
            details={
                "handoff_id": handoff_id,
                "status": handoff.status,
                "child_session_id": handoff.child_session_id,
                "expires_at": handoff.expires_at,
            },
        )
    _close(ctx, handoff, "reclaimed")
    if child is not None:
        kill(ctx, child, body.get("reason"), "handoff_reclaim")
    return {"handoff": handoff.to_dict()}


def kill_workflow(
    ctx: Context, workflow: Workflow, members: list[Session], reason: str | None
) -> None:
    """§3.16: kill every member (`actor: workflow`), reclaim open handoffs; once only."""
    if workflow.status == "killed":
        return
    workflow.status = "killed"
    workflow.killed = Killed(at=ctx.now(), reason=reason, actor="api")
    for member in members:
        kill(ctx, member, reason, "workflow")
    for handoff in workflow.handoffs.values():
        if handoff.is_open:
            _close(ctx, handoff, "reclaimed")
