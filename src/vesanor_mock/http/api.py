"""The /api/v1 operations: each is a path, a method and one runtime call (PROTOCOL.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..domain.runtime import Runtime

Params = dict[str, str]
Body = dict[str, Any]
Result = tuple[int, dict[str, Any]]
Call = Callable[[Runtime, str, Params, Params, Body], Result]

API_PREFIX = "/api/v1"
ENVIRONMENTS = ("development", "staging", "production")


@dataclass(frozen=True)
class QueryParam:
    """A query parameter an operation accepts."""

    name: str
    required: bool = False  # present and not empty
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Operation:
    """One endpoint of the Runtime API."""

    name: str
    method: str
    path: str
    call: Call
    query: tuple[QueryParam, ...] = ()

    @property
    def has_body(self) -> bool:
        """POST operations take a JSON body."""
        return self.method == "POST"


def _ok(answer: dict[str, Any]) -> Result:
    return 200, answer


def _created(answer: dict[str, Any]) -> Result:
    return 201, answer


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "create_session",
        "POST",
        "/replay/sessions",
        lambda rt, t, p, q, b: rt.create_session(t, b),
    ),
    Operation(
        "get_session",
        "GET",
        "/replay/sessions/{sid}",
        lambda rt, t, p, q, b: _ok(rt.get_session(t, p["sid"], q.get("include") == "pending")),
        query=(QueryParam("include", choices=("pending",)),),
    ),
    Operation(
        "preflight",
        "POST",
        "/replay/sessions/{sid}/preflight",
        lambda rt, t, p, q, b: _ok(rt.preflight(t, p["sid"], b)),
    ),
    Operation(
        "proposals",
        "POST",
        "/replay/sessions/{sid}/proposals",
        lambda rt, t, p, q, b: _ok(rt.propose(t, p["sid"], b)),
    ),
    Operation(
        "receipts",
        "POST",
        "/replay/sessions/{sid}/receipts",
        lambda rt, t, p, q, b: _ok(rt.receipt(t, p["sid"], b)),
    ),
    Operation(
        "labels",
        "POST",
        "/replay/sessions/{sid}/labels",
        lambda rt, t, p, q, b: _created(rt.add_label(t, p["sid"], b)),
    ),
    Operation(
        "tool_filter",
        "POST",
        "/replay/sessions/{sid}/tool-filter",
        lambda rt, t, p, q, b: _ok(rt.set_tool_filter(t, p["sid"], b)),
    ),
    Operation(
        "report_bypass",
        "POST",
        "/replay/sessions/{sid}/report-bypass",
        lambda rt, t, p, q, b: _ok(rt.report_bypass(t, p["sid"], b)),
    ),
    Operation(
        "kill",
        "POST",
        "/replay/sessions/{sid}/kill",
        lambda rt, t, p, q, b: _ok(rt.kill(t, p["sid"], b)),
    ),
    Operation(
        "recover",
        "POST",
        "/replay/sessions/{sid}/recover",
        lambda rt, t, p, q, b: _ok(rt.recover(t, p["sid"], b)),
    ),
    Operation(
        "get_workflow",
        "GET",
        "/replay/workflows/{wid}",
        lambda rt, t, p, q, b: _ok(rt.get_workflow(t, p["wid"])),
    ),
    Operation(
        "offer_handoff",
        "POST",
        "/replay/sessions/{sid}/handoffs",
        lambda rt, t, p, q, b: _created(rt.offer_handoff(t, p["sid"], b)),
    ),
    Operation(
        "complete_handoff",
        "POST",
        "/replay/workflows/{wid}/handoffs/{hid}/complete",
        lambda rt, t, p, q, b: _ok(rt.complete_handoff(t, p["wid"], p["hid"], b)),
    ),
    Operation(
        "reclaim_handoff",
        "POST",
        "/replay/workflows/{wid}/handoffs/{hid}/reclaim",
        lambda rt, t, p, q, b: _ok(rt.reclaim_handoff(t, p["wid"], p["hid"], b)),
    ),
    Operation(
        "kill_workflow",
        "POST",
        "/replay/workflows/{wid}/kill",
        lambda rt, t, p, q, b: _ok(rt.kill_workflow(t, p["wid"], b)),
    ),
    Operation(
        "governance_plan",
        "GET",
        "/governance/plan",
        lambda rt, t, p, q, b: _ok(
            rt.governance_plan(t, q["agent"], q.get("environment", "development"))
        ),
        query=(QueryParam("agent", required=True), QueryParam("environment", choices=ENVIRONMENTS)),
    ),
)


Match = tuple[Operation, dict[str, str]]


class OperationTable:
    """Which operation a `/api/v1` path names, found by its segments instead of a route scan.

    Compiled once from OPERATIONS: paths are grouped by their number of segments; within a
    group, a path's literal segments must be equal and each `{param}` takes one non-empty
    segment (as Starlette's default convertor does). `match` answers None for anything
    else (an unknown path, an empty segment, a trailing slash, another method): the
    router then answers it as before (404, 405), so only the exact hits take this path.
    """

    def __init__(self, operations: tuple[Operation, ...]) -> None:
        self._by_length: dict[int, list[tuple[tuple[str | None, ...], dict[str, Operation]]]] = {}
        grouped: dict[tuple[str | None, ...], dict[str, Operation]] = {}
        for op in operations:
            pattern = tuple(
                None if part.startswith("{") else part for part in op.path.strip("/").split("/")
            )
            grouped.setdefault(pattern, {})[op.method] = op
        self._names = {
            pattern: tuple(
                part[1:-1]
                for part in ops[next(iter(ops))].path.strip("/").split("/")
                if part.startswith("{")
            )
            for pattern, ops in grouped.items()
        }
        for pattern, ops in grouped.items():
            self._by_length.setdefault(len(pattern), []).append((pattern, ops))

    def match(self, method: str, path: str) -> Match | None:
        """The operation and path parameters of `METHOD /api/v1/...`, or None."""
        if not path.startswith(API_PREFIX + "/"):
            return None
        parts = path[len(API_PREFIX) + 1 :].split("/")
        for pattern, ops in self._by_length.get(len(parts), ()):
            values: list[str] = []
            for want, got in zip(pattern, parts, strict=True):
                if want is None:
                    if not got:
                        break
                    values.append(got)
                elif want != got:
                    break
            else:
                op = ops.get(method)
                if op is None:
                    return None
                return op, dict(zip(self._names[pattern], values, strict=True))
        return None


OPERATION_TABLE = OperationTable(OPERATIONS)
