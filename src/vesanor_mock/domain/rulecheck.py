"""Semantic checks of schema-valid rules: a rule that can never fire, or contradicts itself.

Each problem is `(pointer, message)` with the pointer relative to the rule. The checks:
a filter the endpoint cannot carry (`tool` outside proposals and receipts, `session_id` or
`agent` where the request names no session or agent), a tenant that does not exist, an
`nth` entirely inside the matches `after` skips, a session effect on an endpoint with no
session in its path, a `block` outside proposals, two answers for one request, and
`after_commit` (or `block`) on a request another effect answers before it is handled, and
a raw answer setting a header only the server may set (Content-Length, Transfer-Encoding,
Connection).
With `endpoint: any` the filters and effects simply apply where they can.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .rules import (
    AGENT_ENDPOINTS,
    ANSWERS,
    ANY,
    LATE_ANSWERS,
    SESSION_ID_ENDPOINTS,
    SESSION_PATH_ENDPOINTS,
    TOOL_ENDPOINTS,
)

Problem = tuple[str, str]
SESSION_EFFECTS = ("kill_session", "compromise_session", "expire_lease")
SERVER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def rule_problems(rule: Mapping[str, Any], tenants: Collection[str] | None = None) -> list[Problem]:
    """Everything that makes a schema-valid rule unable to fire or self-contradictory."""
    when: Mapping[str, Any] = rule["when"]
    then: Mapping[str, Any] = rule["then"]
    endpoint = when["endpoint"]
    problems = _filter_problems(when, endpoint, tenants)
    problems += _effect_problems(then, endpoint)
    return problems


def _filter_problems(
    when: Mapping[str, Any], endpoint: str, tenants: Collection[str] | None
) -> list[Problem]:
    problems: list[Problem] = []
    carried = (
        ("tool", TOOL_ENDPOINTS, "only proposals and receipts carry a tool"),
        ("session_id", SESSION_ID_ENDPOINTS, "this endpoint names no session"),
        ("agent", AGENT_ENDPOINTS, "this endpoint names no agent"),
    )
    for key, endpoints, why in carried:
        if key in when and endpoint != ANY and endpoint not in endpoints:
            problems.append(
                (f"/when/{key}", f"never matches: {why} ({endpoint} cannot have a {key})")
            )
    if tenants is not None and "tenant" in when and when["tenant"] not in tenants:
        known = ", ".join(sorted(tenants))
        problems.append(
            ("/when/tenant", f"never matches: no tenant {when['tenant']!r} (known: {known})")
        )
    nth = when.get("nth")
    after = when.get("after", 0)
    if nth is not None and after:
        wanted = [nth] if isinstance(nth, int) else list(nth)
        if max(wanted) <= after:
            problems.append(
                (
                    "/when/nth",
                    f"never fires: every nth is among the first {after} matches that "
                    "`after` skips (nth counts every match, skipped ones included)",
                )
            )
    return problems


def _effect_problems(then: Mapping[str, Any], endpoint: str) -> list[Problem]:
    problems: list[Problem] = []
    answers = [key for key in ANSWERS if key in then]
    if len(answers) > 1:
        problems.append(
            ("/then/" + answers[1], f"a request gets one answer: choose one of {answers}")
        )
    late = then.get("after_commit") or {}
    late_answers = [key for key in LATE_ANSWERS if key in late]
    if len(late_answers) > 1:
        problems.append(
            (
                "/then/after_commit/" + late_answers[1],
                f"a request gets one answer: choose one of {late_answers}",
            )
        )
    for key in ("after_commit", "block"):
        if key in then and answers:
            problems.append(
                (f"/then/{key}", f"{key} needs the request handled, but {answers[0]} answers first")
            )
    if "block" in then and endpoint not in (ANY, "proposals"):
        problems.append(("/then/block", f"never applies: block acts on proposals, not {endpoint}"))
    problems += _header_problems(then)
    if endpoint != ANY and endpoint not in SESSION_PATH_ENDPOINTS:
        acting = [f"/then/{key}" for key in SESSION_EFFECTS if key in then]
        if "kill_session" in late:
            acting.append("/then/after_commit/kill_session")
        problems.extend(
            (where, f"never applies: {endpoint} has no session in its path") for where in acting
        )
    return problems


def _header_problems(then: Mapping[str, Any]) -> list[Problem]:
    """Raw answers may not set the headers that frame the HTTP message."""
    late = then.get("after_commit") or {}
    problems: list[Problem] = []
    for where, respond in (
        ("/then/respond", then.get("respond")),
        ("/then/after_commit/respond", late.get("respond")),
    ):
        for name, value in ((respond or {}).get("headers") or {}).items():
            if name.lower() in SERVER_HEADERS:
                problems.append(
                    (f"{where}/headers/{name}", f"{name} is set by the server, not by a rule")
                )
            elif isinstance(value, str) and (bad := _bad_header_char(value)) is not None:
                problems.append(
                    (
                        f"{where}/headers/{name}",
                        f"a header value holds {bad!r}: only printable Latin-1 text and tabs "
                        "can be sent in an HTTP header",
                    )
                )
    return problems


def _bad_header_char(value: str) -> str | None:
    """The first character of `value` an HTTP header cannot carry, if any."""
    for char in value:
        code = ord(char)
        if not (char == "\t" or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF):
            return char
    return None
