"""A journal entry in a few fields: what a person reading a run wants to see of one request.

The dashboard's timeline, its journal table and `vesanor-mock journal` show the same
digest: the decision and reason codes per tool call, the state version the request
expected and the one the answer carries, the phase, lease and fence changes, the handoff
or workflow it touched, and the faults the scenario's rules injected (dropped, raw,
malformed, delayed, after-commit, forced block, ...). It is read from the bodies that
crossed the wire and from the rules that fired, so it costs nothing until someone asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .journal import Entry
from .rules import Rule

FAULTS = (
    "dropped",
    "raw",
    "malformed",
    "delayed",
    "after-commit",
    "forced-block",
    "forced-stale",
    "kill",
    "compromise",
    "lease-expired",
    "clock",
)
"""Every fault marker a digest may carry, in the order they are listed."""


def digest(entry: Entry, rules: Mapping[str, Rule]) -> dict[str, Any]:
    """The digest of one entry; `rules` maps rule ids to the world's rules (for the faults)."""
    request = entry.to_dict()
    body, answer = request["request_body"], request["response_body"]
    body = body if isinstance(body, dict) else {}
    answer_obj = answer if isinstance(answer, dict) else {}
    found = answer_obj.get("session")
    session: dict[str, Any] = found if isinstance(found, dict) else {}
    error = _error(answer_obj)
    return {
        "tenant": entry.tenant,
        "decision": _str(answer_obj.get("decision")),
        "error": error.get("code") if error else entry.error,
        "error_message": error.get("message") if error else None,
        "reasons": _reasons(answer_obj.get("reasons")),
        "calls": _calls(answer_obj.get("calls")),
        "narrowed": _narrowed(answer_obj.get("narrowed")),
        "expected_state_version": _int(body.get("expected_state_version")),
        "state_version": _state_version(answer_obj, session, error),
        "phase": _phase(answer_obj.get("phase")) or _phase(session.get("phase")),
        "fence_token": _int(body.get("fence_token")),
        "lease": _lease(answer_obj, session, error),
        "session_status": _str(answer_obj.get("session_status")) or _str(session.get("status")),
        "committed": answer_obj.get("committed")
        if isinstance(answer_obj.get("committed"), bool)
        else None,
        "commit_reason": _str(answer_obj.get("commit_reason")),
        "workflow": _workflow(session.get("workflow")),
        "handoff": _handoff(answer_obj.get("handoff")),
        "faults": faults(entry, rules),
    }


def faults(entry: Entry, rules: Mapping[str, Rule]) -> list[str]:
    """The faults the fired rules injected into this request (see FAULTS)."""
    found: set[str] = set()
    if entry.outcome == "dropped":
        found.add("dropped")
    elif entry.outcome == "raw":
        found.add("malformed" if isinstance(entry.response_body, str) else "raw")
    for rule_id in entry.rules_fired:
        rule = rules.get(rule_id)
        if rule is None:
            continue
        then = rule.then
        late = then.after_commit
        if then.delay_ms or (late is not None and late.delay_ms):
            found.add("delayed")
        if late is not None:
            found.add("after-commit")
            if late.kill:
                found.add("kill")
        if then.block is not None:
            found.add("forced-block")
        if then.answer == "stale_state_version":
            found.add("forced-stale")
        if then.kill:
            found.add("kill")
        if then.compromise:
            found.add("compromise")
        if then.expire_lease:
            found.add("lease-expired")
        if then.advance_clock_s:
            found.add("clock")
    return [name for name in FAULTS if name in found]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    error = answer.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error
    return None


def _reasons(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [r["code"] for r in value if isinstance(r, dict) and isinstance(r.get("code"), str)]


def _calls(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [
        {
            "tool": _str(call.get("tool_name")),
            "decision": _str(call.get("decision")),
            "enforced": call.get("enforced") is True,
            "reasons": _reasons(call.get("reasons")),
            "pending_call_id": _str(call.get("pending_call_id")),
        }
        for call in value
        if isinstance(call, dict)
    ]


def _narrowed(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [
        {"tool": _str(item.get("tool")), "reason": _str(item.get("reason"))}
        for item in value
        if isinstance(item, dict)
    ]


def _state_version(
    answer: Mapping[str, Any], session: Mapping[str, Any], error: Mapping[str, Any] | None
) -> int | None:
    for value in (answer.get("state_version"), session.get("state_version")):
        number = _int(value)
        if number is not None:
            return number
    details = error.get("details") if error else None
    if isinstance(details, dict):
        return _int(details.get("current_state_version"))
    return None


def _phase(value: Any) -> str | None:
    return _str(value.get("current")) if isinstance(value, dict) else None


def _lease(
    answer: Mapping[str, Any], session: Mapping[str, Any], error: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The lease the answer shows (`fence_token`, `lease_id`, `holder_id`), if any."""
    for value in (answer.get("lease"), session.get("lease")):
        if isinstance(value, dict):
            return {
                "lease_id": _str(value.get("lease_id")),
                "fence_token": _int(value.get("fence_token")),
                "holder_id": _str(value.get("holder_id")),
            }
    details = error.get("details") if error else None
    if isinstance(details, dict) and _int(details.get("current_fence_token")) is not None:
        return {
            "lease_id": None,
            "fence_token": details["current_fence_token"],
            "holder_id": None,
        }
    return None


def _workflow(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    keys = ("workflow_id", "role", "type", "parent_session_id", "handoff_id")
    return {key: _str(value.get(key)) for key in keys}


def _handoff(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    keys = (
        "handoff_id",
        "workflow_id",
        "from_session_id",
        "from_role",
        "to_role",
        "status",
        "child_session_id",
    )
    return {key: _str(value.get(key)) for key in keys}
