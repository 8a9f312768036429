"""What rules see of a request, and the state effects they apply around its handling (§5).

The HTTP edge asks `facts_for` what a request is about, lets the RuleBook decide which
rules fire, then calls `apply_before` (clock, lease, compromise, kill), the runtime, and
`apply_after_commit`. Transport effects (delays, raw answers, dropped connections) are the
edge's to perform; everything that touches state is here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from ..clock import MAX_EPOCH_S, Clock, ClockRangeError
from ..errors import Conflict, LimitExceeded, NotFound
from .rules import SESSION_PATH_ENDPOINTS, Facts, Verdict
from .runtime import Runtime
from .sessionops import stale


def facts_for(
    runtime: Runtime,
    endpoint: str,
    tenant: str,
    params: Mapping[str, str],
    query: Mapping[str, str],
    body: Mapping[str, Any],
) -> Facts:
    """The session, agent and tools a request is about (read defensively: validation may be off)."""
    session_id = params.get("sid")
    agent: str | None = None
    tools: tuple[str, ...] = ()
    with runtime.lock:
        session = runtime.sessions.get((tenant, session_id)) if session_id else None
        if session is not None:
            agent = session.agent
        if endpoint == "create_session":
            session_id = _text(body.get("session_id"))
            agent = _text(body.get("agent"))
        elif endpoint == "governance_plan":
            agent = query.get("agent")
        elif endpoint == "proposals":
            tools = _proposed_tools(body)
        elif endpoint == "receipts" and session is not None:
            pending = session.pending.get(_text(body.get("pending_call_id")) or "")
            tools = (pending.tool_name,) if pending is not None else ()
    return Facts(endpoint, tenant, session_id, agent, tools)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _proposed_tools(body: Mapping[str, Any]) -> tuple[str, ...]:
    response = body.get("response")
    calls = response.get("tool_calls") if isinstance(response, dict) else None
    if not isinstance(calls, list):
        return ()
    names = (call.get("name") for call in calls if isinstance(call, dict))
    return tuple(name for name in names if isinstance(name, str))


def _session_target(facts: Facts) -> str | None:
    """The session a session effect acts on: the one in the request's path, if any."""
    return facts.session_id if facts.endpoint in SESSION_PATH_ENDPOINTS else None


def apply_before(runtime: Runtime, clock: Clock, facts: Facts, verdict: Verdict) -> None:
    """Clock first, then lease expiry, compromise and kill, all before the request is handled.

    A session effect on a session that does not exist does nothing: the request itself
    then answers 404 as usual.
    """
    if verdict.advance_clock_s:
        try:
            clock.advance(verdict.advance_clock_s)
        except ClockRangeError as exc:
            raise LimitExceeded("clock", MAX_EPOCH_S, f"a rule's advance_clock_s: {exc}") from None
    target = _session_target(facts)
    if target is None:
        return
    kill = verdict.kill
    with contextlib.suppress(NotFound):
        if verdict.expire_lease:
            runtime.expire_lease(facts.tenant, target)
        if verdict.compromise:
            runtime.compromise(facts.tenant, target)
        if kill is not None:
            runtime.scenario_kill(facts.tenant, target, kill.kill_reason)


def apply_after_commit(runtime: Runtime, facts: Facts, verdict: Verdict) -> None:
    """`after_commit.kill_session`: kill the request's session once it was handled."""
    target = _session_target(facts)
    late = next((a for a in verdict.after_commit if a.kill), None)
    if target is None or late is None:
        return
    with contextlib.suppress(NotFound):
        runtime.scenario_kill(facts.tenant, target, late.kill_reason)


def stale_conflict(runtime: Runtime, facts: Facts) -> Conflict:
    """The 409 STALE_STATE_VERSION a `stale_state_version` rule answers, without handling."""
    target = facts.session_id
    with runtime.lock:
        session = runtime.sessions.get((facts.tenant, target)) if target else None
        if session is not None:
            return stale(session)
    return Conflict(
        "state_version moved on (scenario rule)",
        code="STALE_STATE_VERSION",
        details={},
    )
