"""Why a rule did not fire (PROTOCOL.md §6 `GET /_mock/rules`): its near misses.

For every rule: where it came from, its `when` and `then` as written, how many requests it
matched and how often it fired. For a rule that never fired, up to `LIMIT` journaled
requests that came closest, requests to the same endpoint first, then those failing the
fewest conditions, oldest first; each says which condition of `when` it failed, what the
rule wanted and what the request had. A request that passed every filter but was skipped
by the counting (`nth`, `after`) says that instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .journal import Entry
from .rules import ANY, Rule
from .world import World

LIMIT = 3


def rules_view(world: World) -> list[dict[str, Any]]:
    """Every rule in checking order with its counts and, when it never fired, its near misses."""
    entries = [e for e in world.journal.entries() if e.endpoint is not None]
    owners = _session_owners(world)
    view: list[dict[str, Any]] = []
    for rule, origin, matched, fired in world.rules.counts():
        misses = [] if fired else near_misses(rule, matched, entries, owners)
        view.append(
            {
                "id": rule.id,
                "origin": origin,
                "when": dict(rule.raw.get("when", {})),
                "then": dict(rule.raw.get("then", {})),
                "matched": matched,
                "fired": fired,
                "near_misses": misses,
            }
        )
    return view


def near_misses(
    rule: Rule,
    matched: int,
    entries: list[Entry],
    owners: Mapping[str, tuple[str, str]],
) -> list[dict[str, Any]]:
    """Up to LIMIT requests that came closest to firing `rule`, each with what it failed."""
    scored: list[tuple[int, int, int, dict[str, Any]]] = []
    for entry in entries:
        failed = failed_conditions(rule, matched, entry, owners)
        same = 0 if rule.when.endpoint in (ANY, entry.endpoint) else 1
        miss = {
            "request_id": entry.request_id,
            "endpoint": entry.endpoint,
            "session_id": entry.session_id,
            "failed": failed,
        }
        scored.append((same, len(failed), entry.seq, miss))
    scored.sort(key=lambda item: item[:3])
    return [miss for *_, miss in scored[:LIMIT]]


def failed_conditions(
    rule: Rule, matched: int, entry: Entry, owners: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    """The conditions of the rule's `when` this request failed (`field`, `wanted`, `seen`)."""
    when = rule.when
    tenant, agent = _who(entry, owners)
    failed: list[dict[str, Any]] = []
    if when.endpoint not in (ANY, entry.endpoint):
        failed.append({"field": "endpoint", "wanted": when.endpoint, "seen": entry.endpoint})
    if when.session_id is not None and when.session_id != entry.session_id:
        failed.append({"field": "session_id", "wanted": when.session_id, "seen": entry.session_id})
    if when.tool is not None and when.tool not in entry.tools:
        failed.append({"field": "tool", "wanted": when.tool, "seen": list(entry.tools)})
    if when.agent is not None and when.agent != agent:
        failed.append({"field": "agent", "wanted": when.agent, "seen": agent})
    if when.tenant is not None and when.tenant != tenant:
        failed.append({"field": "tenant", "wanted": when.tenant, "seen": tenant})
    if failed:
        return failed
    if when.after and matched <= when.after:
        return [{"field": "after", "wanted": when.after, "seen": matched}]
    wanted = sorted(when.nth) if when.nth is not None else None
    return [{"field": "nth", "wanted": wanted, "seen": matched}]


def _session_owners(world: World) -> dict[str, tuple[str, str]]:
    """session_id -> (tenant, agent), for ids only one tenant uses."""
    owners: dict[str, tuple[str, str]] = {}
    shared: set[str] = set()
    with world.runtime.lock:
        for (tenant, session_id), session in world.runtime.sessions.items():
            if session_id in owners:
                shared.add(session_id)
            owners[session_id] = (tenant, session.agent)
    return {sid: who for sid, who in owners.items() if sid not in shared}


def _who(entry: Entry, owners: Mapping[str, tuple[str, str]]) -> tuple[str | None, str | None]:
    """The tenant and agent of a request, as far as the journal and the sessions tell."""
    if entry.session_id is not None and entry.session_id in owners:
        return owners[entry.session_id]
    try:
        body = json.loads(entry.request_body) if isinstance(entry.request_body, bytes) else None
    except ValueError:
        body = None
    agent = body.get("agent") if isinstance(body, dict) else None
    return None, agent if isinstance(agent, str) else None
