"""The coverage catalogue (PROTOCOL.md §7.2), derived from the contract as the code states it.

- endpoints, their success and error statuses and their semantic 422 codes: the OpenAPI
  operations table (`openapi.OPERATIONS`); each status's code comes from the error table
  of `openapi.ERROR_RESPONSES`;
- the 404 and 409 codes each endpoint can answer (PROTOCOL §3): `CONFLICTS` below, checked
  against the operations table by tests (a code with a status the endpoint cannot answer,
  or a code of the error table that no endpoint lists, fails them);
- policy reasons, kill actors, session states: `domain/coverage.py`;
- scenario effects and faults: the `then` keys of the scenario schema.

`tests/test_coverage.py` fails when an endpoint or an error code exists with no situation.
"""

from __future__ import annotations

import re
from functools import cache

from .domain.coverage import (
    FAULTS,
    KILL_ACTORS,
    REASON_CODES,
    STATES,
    STATUS_CLASSES,
    Situation,
)
from .openapi import ERROR_RESPONSES, OPERATIONS
from .schemas import SchemaRegistry

KILLED = ("SESSION_KILLED",)
GUARDED = ("SESSION_KILLED", "SESSION_COMPROMISED")
FENCED = ("FENCE_MISMATCH", "LEASE_EXPIRED")
CONFLICTS: dict[str, tuple[str, ...]] = {
    "create_session": (
        "WORKFLOW_NOT_FOUND",
        "SESSION_EXISTS_MISMATCH",
        "WORKFLOW_EXISTS",
        "WORKFLOW_KILLED",
        "HANDOFF_STATE_CONFLICT",
        "RESOURCE_CONFLICT",
    ),
    "get_session": ("SESSION_NOT_FOUND",),
    "preflight": (
        "SESSION_NOT_FOUND",
        *GUARDED,
        *FENCED,
        "STALE_STATE_VERSION",
        "PENDING_CALLS_UNRESOLVED",
    ),
    "proposals": (
        "SESSION_NOT_FOUND",
        "PREPARED_REQUEST_NOT_FOUND",
        *GUARDED,
        *FENCED,
        "PREPARED_REQUEST_CONSUMED",
        "PREPARED_REQUEST_EXPIRED",
        "STALE_STATE_VERSION",
    ),
    "receipts": (
        "SESSION_NOT_FOUND",
        "PENDING_CALL_NOT_FOUND",
        *KILLED,
        *FENCED,
        "RECEIPT_CONFLICT",
    ),
    "labels": ("SESSION_NOT_FOUND",),
    "tool_filter": ("SESSION_NOT_FOUND", *GUARDED, *FENCED),
    "report_bypass": ("SESSION_NOT_FOUND", *KILLED),
    "kill": ("SESSION_NOT_FOUND",),
    "recover": ("SESSION_NOT_FOUND", *GUARDED),
    "get_workflow": ("WORKFLOW_NOT_FOUND",),
    "offer_handoff": (
        "SESSION_NOT_FOUND",
        *GUARDED,
        *FENCED,
        "NOT_IN_WORKFLOW",
        "WORKFLOW_KILLED",
        "RESOURCE_CONFLICT",
    ),
    "complete_handoff": ("WORKFLOW_NOT_FOUND", "HANDOFF_NOT_FOUND", "HANDOFF_STATE_CONFLICT"),
    "reclaim_handoff": (
        "WORKFLOW_NOT_FOUND",
        "HANDOFF_NOT_FOUND",
        "HANDOFF_NOT_RECLAIMABLE",
        "HANDOFF_STATE_CONFLICT",
    ),
    "kill_workflow": ("WORKFLOW_NOT_FOUND",),
    "governance_plan": (),
}
"""The 404 and 409 codes of each endpoint (PROTOCOL §3), in the order of its checks."""
RANKS = {"answer": 0, 409: 1, "state": 2, "reason": 3, "fault": 4, "effect": 5, 404: 6, 422: 7}
"""How important a missing situation is (lower first); request errors and 401 come last."""


def error_codes() -> dict[int, tuple[str, ...]]:
    """Each error status's codes, read from the error table of the OpenAPI document."""
    return {
        status: tuple(re.findall(r"\b[A-Z][A-Z_]+[A-Z]\b", text.split(":", 1)[-1]))
        for status, (_, text) in ERROR_RESPONSES.items()
    }


def code_status() -> dict[str, int]:
    """The status each error code answers with."""
    return {code: status for status, codes in error_codes().items() for code in codes}


def _rank(status: int, code: str) -> int:
    if status == 422 and code != "VALIDATION_FAILED":
        return RANKS[422]
    return int(RANKS.get(status, 8 if status != 401 else 9))


def endpoint_situations() -> list[Situation]:
    """Per endpoint: answered 2xx, then each error code it can answer."""
    statuses = code_status()
    generic = error_codes()
    found: list[Situation] = []
    for op in OPERATIONS:
        name = op.endpoint
        found.append(Situation(f"{name}:2xx", "answer", name, f"{name} answered 2xx", 0))
        codes: list[str] = []
        for status in op.errors:
            if status in (400, 401, 413, 415):
                codes += generic[status]
            elif status == 422:
                codes.append("VALIDATION_FAILED")
        codes += [c for c in op.semantic if c != "VALIDATION_FAILED"]
        codes += CONFLICTS[name]
        for code in dict.fromkeys(codes):
            status = statuses[code]
            found.append(
                Situation(
                    f"{name}:{status}:{code}",
                    "error",
                    name,
                    f"{name} answered {status} {code}",
                    _rank(status, code),
                )
            )
    return found


def policy_situations(registry: SchemaRegistry) -> list[Situation]:
    """Reasons in blocks, session states, scenario effects and faults."""
    found = [
        Situation(f"reason:{code}", "reason", None, f"a block with reason {code}", RANKS["reason"])
        for code in REASON_CODES
    ]
    found += [
        Situation(
            f"state:killed:{actor}",
            "state",
            None,
            f"a session killed by {actor}",
            RANKS["state"],
        )
        for actor in KILL_ACTORS
    ]
    states = {
        "compromised": "a compromised session (bypass reported)",
        "lease_expired": "a lease expired on the mock clock (409 LEASE_EXPIRED)",
        "fence_rotated": "a fence rotated by another holder (409 FENCE_MISMATCH)",
    }
    found += [Situation(f"state:{s}", "state", None, states[s], RANKS["state"]) for s in STATES]
    then = registry.schema("scenario")["$defs"]["Then"]["properties"]
    for key in then:
        if key == "respond":
            found += [
                Situation(
                    f"fault:respond:{cls}",
                    "fault",
                    None,
                    f"a scripted raw answer with a {cls} status",
                    RANKS["fault"],
                )
                for cls in STATUS_CLASSES
            ]
        elif key in FAULTS:
            found.append(Situation(f"fault:{key}", "fault", None, f"fault {key}", RANKS["fault"]))
        else:
            found.append(
                Situation(
                    f"effect:{key}", "effect", None, f"scenario effect {key}", RANKS["effect"]
                )
            )
    return found


@cache
def catalogue(registry: SchemaRegistry | None = None) -> tuple[Situation, ...]:
    """Every situation, endpoints first (in the protocol's order), then the others."""
    registry = registry or SchemaRegistry.load()
    return (*endpoint_situations(), *policy_situations(registry))
