"""Expectations (PROTOCOL.md §5 `expect`) and their verification against the journal.

Two forms: a count, `{endpoint, count | min | max, tool?, session_id?, status?}`, counting
the journal entries that match (`endpoint: any` counts every endpoint, `tool` matches a
proposal holding a call of that name or a receipt for a pending call of that tool); and an
order, `{sequence: [endpoint, ...]}`, met when the endpoints occur in that order, not
necessarily adjacent. Verification reads the journal, so it sees only the entries the
journal still holds (`journal_limit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .journal import Entry
from .rules import ANY, TOOL_ENDPOINTS

Problem = tuple[str, str]
COUNT_KEYS = ("count", "min", "max")


@dataclass(frozen=True)
class Expectation:
    """One expectation, as given (`raw`) and parsed."""

    raw: Mapping[str, Any]
    endpoint: str | None = None
    count: int | None = None
    min: int | None = None
    max: int | None = None
    tool: str | None = None
    session_id: str | None = None
    status: int | None = None
    sequence: tuple[str, ...] | None = None

    def matches(self, entry: Entry) -> bool:
        """True when a journal entry is one this count expectation counts."""
        return (
            self.endpoint in (ANY, entry.endpoint)
            and (self.tool is None or self.tool in entry.tools)
            and self.session_id in (None, entry.session_id)
            and self.status in (None, entry.status)
        )

    def describe(self) -> str:
        """A short human name: `proposals (tool issue_refund, status 200)`."""
        if self.sequence is not None:
            return "sequence " + " -> ".join(self.sequence)
        filters = [
            f"{key} {value}"
            for key, value in (
                ("tool", self.tool),
                ("session", self.session_id),
                ("status", self.status),
            )
            if value is not None
        ]
        name = "requests to any endpoint" if self.endpoint == ANY else f"{self.endpoint} requests"
        return name + (f" ({', '.join(filters)})" if filters else "")


def expectation_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Semantic problems of a schema-valid expectation (pointers relative to it)."""
    if "sequence" in data:
        others = [key for key in data if key != "sequence"]
        return [(f"/{key}", "a sequence expectation takes no other key") for key in others]
    if "endpoint" not in data:
        return [("", "an expectation needs an endpoint (with count, min or max) or a sequence")]
    problems: list[Problem] = []
    given = [key for key in COUNT_KEYS if key in data]
    if not given:
        problems.append(("", "a count expectation needs count, min or max"))
    if "count" in data and len(given) > 1:
        problems.append(("/count", "count is exact: do not combine it with min or max"))
    if "min" in data and "max" in data and data["min"] > data["max"]:
        problems.append(("/max", f"max {data['max']} is below min {data['min']}: never met"))
    endpoint = data["endpoint"]
    if "tool" in data and endpoint not in (ANY, *TOOL_ENDPOINTS):
        problems.append(("/tool", f"never matches: {endpoint} requests carry no tool"))
    return problems


def build_expectation(data: Mapping[str, Any]) -> Expectation:
    """An Expectation from checked data."""
    sequence = data.get("sequence")
    return Expectation(
        raw=dict(data),
        endpoint=data.get("endpoint"),
        count=data.get("count"),
        min=data.get("min"),
        max=data.get("max"),
        tool=data.get("tool"),
        session_id=data.get("session_id"),
        status=data.get("status"),
        sequence=None if sequence is None else tuple(sequence),
    )


def verify(
    expectations: Sequence[Expectation], entries: Iterable[Entry], evicted: int = 0
) -> list[dict[str, Any]]:
    """Every unmet expectation: its index, itself, a sentence, and what was seen.

    `evicted`: how many older requests fell off the bounded journal. A failure then says
    so (and `seen.evicted` counts them): what was "seen" is only what the journal kept.
    """
    kept = list(entries)
    failures = []
    for index, expectation in enumerate(expectations):
        if expectation.sequence is not None:
            failure = _check_sequence(expectation, kept)
        else:
            failure = _check_count(expectation, kept)
        if failure is not None:
            message, seen = failure
            if evicted:
                seen["evicted"] = evicted
                message += (
                    f" (in the journal's last {len(kept)} requests: {evicted} older ones fell "
                    "off; raise options.journal_limit to keep them)"
                )
            failures.append(
                {
                    "index": index,
                    "expectation": dict(expectation.raw),
                    "message": f"expect[{index}]: {message}",
                    "seen": seen,
                }
            )
    return failures


def _check_count(
    expectation: Expectation, entries: list[Entry]
) -> tuple[str, dict[str, Any]] | None:
    seen = [entry for entry in entries if expectation.matches(entry)]
    n = len(seen)
    wanted = None
    if expectation.count is not None and n != expectation.count:
        wanted = f"exactly {expectation.count}"
    elif expectation.min is not None and n < expectation.min:
        wanted = f"at least {expectation.min}"
    elif expectation.max is not None and n > expectation.max:
        wanted = f"at most {expectation.max}"
    if wanted is None:
        return None
    statuses: dict[str, int] = {}
    for entry in seen:
        key = str(entry.status) if entry.status is not None else entry.outcome
        statuses[key] = statuses.get(key, 0) + 1
    message = f"expected {wanted} {expectation.describe()}, saw {n}"
    return message, {"count": n, "statuses": statuses, "seqs": [e.seq for e in seen]}


def _check_sequence(
    expectation: Expectation, entries: list[Entry]
) -> tuple[str, dict[str, Any]] | None:
    assert expectation.sequence is not None
    order = [entry.endpoint for entry in entries if entry.endpoint is not None]
    matched = 0
    for endpoint in order:
        if matched < len(expectation.sequence) and endpoint == expectation.sequence[matched]:
            matched += 1
    if matched == len(expectation.sequence):
        return None
    missing = expectation.sequence[matched]
    message = (
        f"expected {expectation.describe()}; found the first {matched} in order, then no "
        f"{missing} after them; endpoints seen: {', '.join(order) or 'none'}"
    )
    return message, {"endpoints": order, "matched": matched, "missing": missing}
