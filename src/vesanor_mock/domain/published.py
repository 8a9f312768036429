"""The published contract field lists (DOMAIN.md, PROTOCOL.md §4.1) and the strict key check.

Every key of a compiled session, of its `session_limits` and of each tool contract must be a
published field: a key that is not is a compile error naming the closest published one
("did you mean `forbids_after`?"), because a typo must never silently drop a limit. The
published sub-fields of a few parts (phases, tool transitions, preconditions, retries,
timeouts, rate limits, assertions, bindings, checkpoints, execution constraints) are
checked the same way.

Published fields the mock keeps but does not enforce are listed by `unenforced_paths`, so
that `session.governance.unenforced` can tell an SDK author what the mock does not check.
"""

from __future__ import annotations

import difflib
from typing import Any

from .jsonpath import ErrorLog, pointer

SESSION_ENFORCED: tuple[str, ...] = (
    "schema_version",
    "agent",
    "phases",
    "transitions",
    "session_limits",
    "risk_defaults",
    "unmatched_policy",
    "tools",
)
SESSION_UNENFORCED: tuple[str, ...] = ("aggregates", "envelopes", "policy")
"""Session-level layers of the public format that the mock keeps without checking."""
SESSION_FIELDS = SESSION_ENFORCED + SESSION_UNENFORCED

LIMIT_FIELDS: tuple[str, ...] = (
    "max_steps",
    "max_tool_calls",
    "max_cost_per_session",
    "max_calls_per_tool",
    "loop_detection",
    "circuit_breaker",
)
LOOP_FIELDS: tuple[str, ...] = ("window", "threshold")
BREAKER_FIELDS: tuple[str, ...] = ("consecutive_blocks", "consecutive_errors")

TOOL_ENFORCED: tuple[str, ...] = (
    "tool",
    "side_effect",
    "evidence_class",
    "commit_requirement",
    "gate",
    "transitions",
    "preconditions",
    "forbids_after",
    "argument_value_invariants",
    "execution_constraints",
    "binds",
    "checkpoint",
)
TOOL_UNENFORCED: tuple[str, ...] = (
    "timeouts",
    "retries",
    "rate_limits",
    "assertions",
    "golden_cases",
    "allowed_errors",
    "response_format_invariants",
    "policy",
    "schema_derived",
    "schema_derived_exclude",
)
"""Tool fields of the public format that the mock keeps without checking."""
TOOL_FIELDS = TOOL_ENFORCED + TOOL_UNENFORCED
TOOL_REQUIRED: tuple[str, ...] = ("side_effect", "evidence_class", "commit_requirement")

PHASE_FIELDS: tuple[str, ...] = ("name", "initial", "terminal")
TOOL_TRANSITION_FIELDS: tuple[str, ...] = ("valid_in_phases", "advances_to")
PRECONDITION_FIELDS: tuple[str, ...] = ("requires_prior_tool", "with_output")
CHECKPOINT_FIELDS: tuple[str, ...] = ("reason",)
EXECUTION_CONSTRAINT_FIELDS: tuple[str, ...] = ("arguments",)
BIND_FIELDS: tuple[str, ...] = ("name", "from")

SUB_FIELDS: dict[str, tuple[str, ...]] = {
    "timeouts": ("total_ms",),
    "retries": ("max_attempts", "retry_on"),
    "rate_limits": ("on_429",),
    "assertions": ("input_invariants", "output_invariants"),
}
"""Published sub-fields of unenforced tool fields that are objects (checked when present)."""
ON_429_FIELDS: tuple[str, ...] = ("respect_retry_after", "max_sleep_seconds")


def did_you_mean(key: str, known: tuple[str, ...]) -> str | None:
    """The published field closest to a misspelled key, if one stands out.

    Tried in order: the same name but for case, `_` and `-`; a close spelling; a unique
    published name that starts with the key (or that the key starts with); a unique one
    sharing a word with it; the only published name there is.
    """
    folded = {name.replace("_", "").lower(): name for name in known}
    plain = key.replace("_", "").replace("-", "").lower()
    if plain in folded:
        return folded[plain]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    close = close or [folded[m] for m in difflib.get_close_matches(plain, list(folded), 1, 0.6)]
    if close:
        return close[0]
    lowered = key.lower()
    prefixed = [n for n in known if n.startswith(lowered) or lowered.startswith(n)]
    if len(prefixed) == 1:
        return prefixed[0]
    words = set(lowered.replace("-", "_").split("_")) - {""}
    sharing = [n for n in known if words & set(n.split("_"))]
    if len(sharing) == 1:
        return sharing[0]
    return known[0] if len(known) == 1 else None


def check_keys(
    value: dict[str, Any],
    at: str,
    log: ErrorLog,
    known: tuple[str, ...],
    what: str,
    keyword: str = "unknown_field",
) -> None:
    """Log every key of `value` that is not in `known`, with a "did you mean"."""
    for key in value:
        if key in known:
            continue
        name = str(key)
        guess = did_you_mean(name, known)
        hint = f"did you mean {guess!r}? " if guess is not None else ""
        message = (
            f"{name!r} is not a published field of {what}; {hint}expected one of {', '.join(known)}"
        )
        log.add(at + pointer(name), message, keyword)


def check_sub_fields(doc: dict[str, Any], at: str, log: ErrorLog) -> None:
    """The published sub-fields of a tool's unenforced object fields."""
    for field, known in SUB_FIELDS.items():
        value = doc.get(field)
        if isinstance(value, dict):
            check_keys(value, at + pointer(field), log, known, field)
    on_429 = (
        doc.get("rate_limits", {}).get("on_429")
        if isinstance(doc.get("rate_limits"), dict)
        else None
    )
    if isinstance(on_429, dict):
        check_keys(on_429, at + pointer("rate_limits", "on_429"), log, ON_429_FIELDS, "on_429")


def unenforced_paths(raw: dict[str, Any]) -> list[str]:
    """The published fields present in a compiled session that the mock does not enforce."""
    paths = [name for name in SESSION_UNENFORCED if name in raw]
    tools = raw.get("tools")
    if isinstance(tools, dict):
        for tool in sorted(tools, key=str):
            doc = tools[tool]
            if isinstance(doc, dict):
                paths += [f"tools.{tool}.{name}" for name in TOOL_UNENFORCED if name in doc]
    return paths
