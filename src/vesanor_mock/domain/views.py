"""Render domain objects into their wire form (PROTOCOL.md §2)."""

from __future__ import annotations

from typing import Any

from .models import Session


def phase_view(session: Session) -> dict[str, Any]:
    """`{"current", "legal_next"}` for the session's phase."""
    contract = session.contract
    legal = contract.legal_next(session.phase) if contract is not None else []
    return {"current": session.phase, "legal_next": list(legal)}


def governance_view(session: Session) -> dict[str, Any]:
    """How the session is attached to governance."""
    contract = session.contract
    return {
        "attachment": "attached" if contract is not None else session.attachment,
        "compiled_hash": contract.compiled_hash if contract is not None else None,
        "source": session.governance_source,
        "unenforced": list(contract.unenforced) if contract is not None else [],
    }


def session_view(session: Session, *, include_pending: bool = False) -> dict[str, Any]:
    """The Session object of §2.1."""
    view: dict[str, Any] = {
        "session_id": session.session_id,
        "agent": session.agent,
        "environment": session.environment,
        "mode": session.mode,
        "enforcement": session.enforcement,
        "status": session.status,
        "authority_state": session.authority_state,
        "bypass_detected": session.bypass_detected,
        "state_version": session.state_version,
        "phase": phase_view(session),
        "counters": session.counters.to_dict(),
        "tool_filter": session.tool_filter.to_dict() if session.tool_filter else None,
        "labels": [label.to_dict() for label in session.labels],
        "bindings": dict(session.bindings),
        "lease": session.lease.to_dict(),
        "workflow": session.workflow.to_dict() if session.workflow else None,
        "governance": governance_view(session),
        "killed": session.killed.to_dict() if session.killed else None,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }
    if include_pending:
        view["pending_calls"] = pending_view(session)
    return view


def pending_view(session: Session) -> list[dict[str, Any]]:
    """Every pending-call record of the session, oldest first, in any status."""
    return [call.to_dict() for call in session.pending.values()]


def unresolved_ids(session: Session) -> list[str]:
    """Pending calls still waiting for a receipt."""
    return list(session.unresolved)
