"""Export a run: the world it started from and the requests it saw, as a scenario document.

The document holds the seed, the clock, the options, the tenants, the plans (contracts
inline), the pre-seeded sessions and every rule in force (the scenario's and those added
at run time), and, as `expect`, what the journal shows: the whole endpoint sequence, the
number of requests, and the count of each endpoint and of each endpoint and status. Loaded
into a fresh server and sent the same requests, it gives the same journal, and its
expectations check that the replay did see the same requests.

API keys never leave in clear: every key but the public `vsk_test_default` is replaced by
a stand-in (`vsk_test_export_<n>`); the journal holds no keys, so a replay that uses the
stand-ins gives the same journal. Plain Python: the caller writes the document as YAML.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..domain.journal import Entry
from ..domain.sessionops import LIMIT_OPTIONS
from ..domain.world import DEFAULT_API_KEY, SessionSeed, World, WorldSpec

STAND_IN = "vsk_test_export_{}"


def export_view(world: World, source: str | None) -> dict[str, Any]:
    """GET /_mock/export: the document, the keys replaced, and what the export could not keep."""
    spec, journal = world.spec, world.journal
    keys, replaced = stand_in_keys(spec.api_keys)
    entries = journal.entries()
    rules = world.rules.counts()
    document: dict[str, Any] = {
        "scenario": f"{spec.name or 'scenario'}-export",
        "description": (
            f"Exported from a run of {spec.name or 'an unnamed scenario'}: "
            f"{len(entries)} request(s)."
        ),
        **_world(spec, keys),
        "rules": [dict(rule.raw) for rule, _, _, _ in rules],
        "expect": observed(entries),
    }
    return {
        "scenario": document,
        "source": source,
        "keys": replaced,
        "runtime_rules": sum(1 for _, origin, _, _ in rules if origin == "runtime"),
        "original_expect": [dict(e.raw) for e in spec.expect],
        "journal": {"entries": len(entries), "total": journal.total},
    }


def stand_in_keys(api_keys: dict[str, str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Keys for the export (key -> tenant) and what was replaced (masked, with its stand-in)."""
    keys: dict[str, str] = {}
    replaced: list[dict[str, str]] = []
    for key, tenant in api_keys.items():
        if key == DEFAULT_API_KEY:
            keys[key] = tenant
            continue
        n = len(replaced) + 1
        while STAND_IN.format(n) in api_keys:
            n += 1
        stand_in = STAND_IN.format(n)
        keys[stand_in] = tenant
        replaced.append({"tenant": tenant, "key": mask(key), "export_key": stand_in})
    return keys, replaced


def mask(key: str) -> str:
    """A key shown without giving it away: `sk_liv…ab12`; a key under 16 characters: `sk…`."""
    if len(key) < 16:
        return key[:2] + "…"
    return f"{key[:6]}…{key[-4:]}"


def _world(spec: WorldSpec, keys: dict[str, str]) -> dict[str, Any]:
    """Seed, clock, options, tenants, plans and sessions: where the run started."""
    options = spec.options
    tenants: dict[str, list[str]] = {name: [] for name in spec.tenants}
    for key, tenant in keys.items():
        tenants[tenant].append(key)
    return {
        "seed": spec.seed,
        "clock": {"start": spec.clock_start, "mode": spec.clock_mode},
        "options": {
            "validation": spec.validation,
            "prepared_ttl_s": options.prepared_ttl_s,
            "lease_ttl_s": options.lease_ttl_s,
            "require_receipts_before_preflight": options.require_receipts_before_preflight,
            "fail_closed_without_plan": options.fail_closed_without_plan,
            "max_delay_ms": options.max_delay_ms,
            **{name: getattr(options, name) for name in LIMIT_OPTIONS},
            "max_body_bytes": spec.max_body_bytes,
            "journal_limit": spec.journal_limit,
        },
        "tenants": [{"name": name, "api_keys": names} for name, names in tenants.items()],
        "plans": [
            {
                "tenant": plan.tenant,
                "agent": plan.agent,
                "environment": plan.environment,
                "status": plan.status,
                **(
                    {"compiled_session": plan.compiled_session}
                    if plan.compiled_session is not None
                    else {}
                ),
            }
            for plan in spec.plans
        ],
        "sessions": [_session(seed) for seed in spec.sessions],
    }


def _session(seed: SessionSeed) -> dict[str, Any]:
    """A pre-seeded session as the scenario format writes it."""
    item: dict[str, Any] = {"tenant": seed.tenant, **seed.create}
    if not item.get("metadata"):
        item.pop("metadata", None)
    contract = seed.contract
    if contract is not None and seed.source == "plan":
        item["contract"] = {"compiled_hash": contract.compiled_hash}
    elif contract is not None:
        item["contract"] = {"compiled_session": contract.raw}
    if seed.state_version:
        item["state_version"] = seed.state_version
    if seed.phase is not None:
        item["phase"] = seed.phase
    if seed.status != "active":
        item["status"] = seed.status
    return item


def observed(entries: list[Entry]) -> list[dict[str, Any]]:
    """Expectations that hold for exactly this journal: sequence, total and counts."""
    endpoints = [e.endpoint for e in entries if e.endpoint is not None]
    expect: list[dict[str, Any]] = [{"endpoint": "any", "count": len(entries)}]
    if endpoints:
        expect.append({"sequence": endpoints})
    for endpoint, n in Counter(endpoints).items():
        expect.append({"endpoint": endpoint, "count": n})
    by_status = Counter(
        (e.endpoint, e.status) for e in entries if e.endpoint is not None and e.status is not None
    )
    for (endpoint, status), n in by_status.items():
        expect.append({"endpoint": endpoint, "status": status, "count": n})
    return expect
