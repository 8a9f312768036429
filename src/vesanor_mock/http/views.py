"""What the control API shows of a world: its state, and the journal's query filters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..catalogue import catalogue
from ..domain.checker import SEVERITIES
from ..domain.coverage import report
from ..domain.digest import digest
from ..domain.journal import OUTCOMES, Entry
from ..domain.runtime import Runtime
from ..domain.views import session_view
from ..domain.world import World
from ..errors import FieldError, ValidationFailed
from ..openapi import FINDINGS_FILTERS, JOURNAL_FILTERS, JOURNAL_VIEW
from ..scenarios import Scenario
from ..scenarios.export import mask
from ..schemas import ENDPOINTS

if TYPE_CHECKING:
    from .app import MockService

BOOLEANS = {"true": True, "false": False}
MAX_FILTER_DIGITS = 18
"""The longest `status` or `since` a journal query takes (anything longer matches nothing)."""


def mask_key(key: str) -> str:
    """An API key shown without giving it away: `vsk_te…ault` (as the banner and exports)."""
    return mask(key)


def state_view(world: World, scenario: Scenario | None) -> dict[str, Any]:
    """GET /_mock/state: the scenario, clock, tenants, sessions, workflows, plans, rules."""
    spec, journal = world.spec, world.journal
    tenants: dict[str, list[str]] = {name: [] for name in spec.tenants}
    for key, tenant in spec.api_keys.items():
        tenants[tenant].append(mask_key(key))
    return {
        "scenario": {
            "name": spec.name,
            "description": spec.description,
            "source": scenario.source if scenario else None,
            "seed": spec.seed,
        },
        "clock": world.clock.snapshot(),
        "tenants": [{"name": name, "api_keys": keys} for name, keys in tenants.items()],
        **_runtime_view(world.runtime),
        "rules": [
            {"id": rule.id, "source": source, "matched": matched, "fired": fired}
            for rule, source, matched, fired in world.rules.counts()
        ],
        "journal": {"entries": len(journal), "limit": journal.limit, "total": journal.total},
    }


def _runtime_view(runtime: Runtime) -> dict[str, Any]:
    """Sessions and workflows with their tenant, and every plan, read under the lock."""
    with runtime.lock:
        return {
            "sessions": [
                {"tenant": tenant, "session": session_view(session, include_pending=True)}
                for (tenant, _), session in runtime.sessions.items()
            ],
            "workflows": [
                {"tenant": tenant, "workflow": runtime.get_workflow(tenant, wid)["workflow"]}
                for tenant, wid in runtime.workflows
            ],
            "plans": [
                {
                    "tenant": plan.tenant,
                    "agent": plan.agent,
                    "environment": plan.environment,
                    "status": plan.status,
                    "plan_id": plan.plan_id,
                    "compiled_hash": plan.compiled_hash,
                }
                for plan in runtime.plans.values()
            ],
        }


def journal_query(query: dict[str, str]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The journal's filters and view from a query string; 422 for an unknown or ill-typed
    parameter, saying what was expected."""
    errors = [
        FieldError(f"/{name}", f"unknown query parameter {name!r}", "additionalProperties")
        for name in query
        if name not in JOURNAL_FILTERS and name not in JOURNAL_VIEW
    ]
    filters: dict[str, Any] = {}
    if "endpoint" in query:
        if query["endpoint"] not in ENDPOINTS:
            errors.append(FieldError("/endpoint", "expected an endpoint name", "enum"))
        filters["endpoint"] = query["endpoint"]
    if "session_id" in query:
        filters["session_id"] = query["session_id"]
    if "outcome" in query:
        if query["outcome"] not in OUTCOMES:
            message = f"expected one of {list(OUTCOMES)}, got {query['outcome']!r}"
            errors.append(FieldError("/outcome", message, "enum"))
        filters["outcome"] = query["outcome"]
    if "rule" in query:
        filters["rule"] = query["rule"]
    view = {"digest": False, "bodies": True}
    for name in JOURNAL_VIEW:
        if name in query:
            if query[name] not in BOOLEANS:
                message = f"expected true or false, got {query[name]!r}"
                errors.append(FieldError(f"/{name}", message, "type"))
            else:
                view[name] = BOOLEANS[query[name]]
    for name in ("status", "since", "limit", "tail"):
        if name in query:
            value = query[name]
            if not (value.isascii() and value.isdigit()):
                errors.append(FieldError(f"/{name}", "expected a non-negative integer", "type"))
            elif len(value.lstrip("0")) > MAX_FILTER_DIGITS:
                message = f"expected an integer of at most {MAX_FILTER_DIGITS} digits"
                errors.append(FieldError(f"/{name}", message, "maximum"))
            else:
                filters[name] = int(value)
    if errors:
        raise ValidationFailed(errors)
    return filters, view


def journal_view(world: World, entries: list[Entry], view: dict[str, bool]) -> dict[str, Any]:
    """GET /_mock/journal's answer: the entries, with digests and bodies as asked."""
    rules = {rule.id: rule for rule in world.rules.rules} if view["digest"] else {}
    shown = []
    for entry in entries:
        item = entry.to_dict(bodies=view["bodies"])
        if view["digest"]:
            item["digest"] = digest(entry, rules)
        shown.append(item)
    return {"entries": shown}


def findings_query(query: dict[str, str]) -> dict[str, str]:
    """The findings filters from a query string; 422 for an unknown one or a bad severity."""
    errors = [
        FieldError(f"/{name}", f"unknown query parameter {name!r}", "additionalProperties")
        for name in query
        if name not in FINDINGS_FILTERS
    ]
    severity = query.get("severity")
    if severity is not None and severity not in SEVERITIES:
        message = f"expected one of {list(SEVERITIES)}, got {severity!r}"
        errors.append(FieldError("/severity", message, "enum"))
    if errors:
        raise ValidationFailed(errors)
    return {name: query[name] for name in FINDINGS_FILTERS if name in query}


def findings_view(
    world: World, session_id: str | None = None, severity: str | None = None
) -> dict[str, Any]:
    """GET /_mock/findings: the findings (filtered) and how many requests were checked."""
    checker = world.checker
    found = checker.findings(
        session_id=session_id, severity=severity, pending_status=world.pending_status
    )
    return {
        "findings": [finding.to_dict() for finding in found],
        "checked_requests": checker.checked,
    }


def coverage_view(service: MockService) -> dict[str, Any]:
    """GET /_mock/coverage: every situation of the catalogue with how often it was seen."""
    return report(catalogue(service.registry), service.coverage.seen())
