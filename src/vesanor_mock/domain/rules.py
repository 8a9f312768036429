"""Scenario rules (PROTOCOL.md §5): which requests a rule matches, how it counts, what it does.

A rule is `when` (an endpoint or `any`, optional filters, and counting) plus `then` (its
effects). Rules are checked in order and every matching rule fires. Counting is per rule:
`n` is the number of requests its `when` has matched so far (1-based); the rule fires on
the n-th match when `n > after`, `n` is in `nth` (if given), and it has fired fewer than
`times` times (if given). This module is pure: it sees `Facts`, never HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .policy import Reason

ANY = "any"
DEFAULT_BLOCK_CODE = "scenario_forced"
DEFAULT_BLOCK_DETAIL = "Blocked by a scenario rule"

SESSION_PATH_ENDPOINTS = frozenset(
    {
        "get_session",
        "preflight",
        "proposals",
        "receipts",
        "labels",
        "tool_filter",
        "report_bypass",
        "kill",
        "recover",
        "offer_handoff",
    }
)
"""Endpoints with a session in their path: the only ones session effects can act on."""

SESSION_ID_ENDPOINTS = SESSION_PATH_ENDPOINTS | {"create_session"}
AGENT_ENDPOINTS = SESSION_ID_ENDPOINTS | {"governance_plan"}
TOOL_ENDPOINTS = frozenset({"proposals", "receipts"})
ANSWERS = ("stale_state_version", "respond", "drop_connection", "malformed_body")
"""Effects that answer in place of the runtime; a request gets at most one answer."""
LATE_ANSWERS = ("drop_connection", "respond", "malformed_body")


@dataclass(frozen=True)
class Respond:
    """A raw answer: a status, an optional JSON body (absent: empty) and headers."""

    status: int
    body: Any = None
    has_body: bool = False
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AfterCommit:
    """Faults applied once the request was handled and its change committed."""

    delay_ms: int = 0
    answer: str | None = None  # one of LATE_ANSWERS
    respond: Respond | None = None
    kill: bool = False
    kill_reason: str | None = None


@dataclass(frozen=True)
class Effects:
    """A rule's `then`."""

    block: Reason | None = None
    answer: str | None = None  # one of ANSWERS
    respond: Respond | None = None
    kill: bool = False
    kill_reason: str | None = None
    compromise: bool = False
    expire_lease: bool = False
    advance_clock_s: float = 0.0
    delay_ms: int = 0
    after_commit: AfterCommit | None = None


@dataclass(frozen=True)
class Facts:
    """What rules can see of one request (after authentication and body validation)."""

    endpoint: str
    tenant: str
    session_id: str | None = None
    agent: str | None = None
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class When:
    """A rule's filters and counting."""

    endpoint: str = ANY
    session_id: str | None = None
    agent: str | None = None
    tool: str | None = None
    tenant: str | None = None
    nth: frozenset[int] | None = None
    after: int = 0
    times: int | None = None

    def matches(self, facts: Facts) -> bool:
        """True when every filter holds for the request (counting aside)."""
        return (
            self.endpoint in (ANY, facts.endpoint)
            and self.tenant in (None, facts.tenant)
            and self.session_id in (None, facts.session_id)
            and self.agent in (None, facts.agent)
            and (self.tool is None or self.tool in facts.tools)
        )


@dataclass(frozen=True)
class Rule:
    """One scenario rule; `raw` is the rule as written, with its id (exports write it back)."""

    id: str
    when: When
    then: Effects
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Verdict:
    """The rules that fired on one request, and their effects merged in rule order."""

    fired: list[Rule] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """The ids of the rules that fired, in order."""
        return [rule.id for rule in self.fired]

    @property
    def advance_clock_s(self) -> float:
        """Seconds to move the clock before handling (summed)."""
        return sum(rule.then.advance_clock_s for rule in self.fired)

    @property
    def delay_ms(self) -> int:
        """Milliseconds to wait before handling (summed)."""
        return sum(rule.then.delay_ms for rule in self.fired)

    @property
    def kill(self) -> Effects | None:
        """The first fired effect that kills the session before handling."""
        return next((r.then for r in self.fired if r.then.kill), None)

    @property
    def compromise(self) -> bool:
        """True when a fired rule compromises the session."""
        return any(rule.then.compromise for rule in self.fired)

    @property
    def expire_lease(self) -> bool:
        """True when a fired rule expires the lease."""
        return any(rule.then.expire_lease for rule in self.fired)

    @property
    def answer(self) -> Effects | None:
        """The first fired effect that answers in place of the runtime (file order wins)."""
        return next((r.then for r in self.fired if r.then.answer is not None), None)

    @property
    def after_commit(self) -> list[AfterCommit]:
        """Every fired after-commit fault, in rule order."""
        return [r.then.after_commit for r in self.fired if r.then.after_commit is not None]

    def forced_block(self, tool_name: str) -> Reason | None:
        """Check 10 of §4.2: the first fired block that applies to this tool call."""
        for rule in self.fired:
            if rule.then.block is not None and rule.when.tool in (None, tool_name):
                return rule.then.block
        return None

    @property
    def blocks(self) -> bool:
        """True when a fired rule forces blocks."""
        return any(rule.then.block is not None for rule in self.fired)


@dataclass
class _Count:
    matched: int = 0
    fired: int = 0


class RuleBook:
    """A world's rules with their counters: the scenario's, then those added at run time."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self._lock = threading.Lock()
        self._base = [(rule, _Count()) for rule in rules]
        self._added: list[tuple[Rule, _Count]] = []

    @property
    def rules(self) -> list[Rule]:
        """Every rule in checking order."""
        return [rule for rule, _ in (*self._base, *self._added)]

    @property
    def added(self) -> list[Rule]:
        """The rules added at run time."""
        return [rule for rule, _ in self._added]

    def fired(self, ids: Iterable[str]) -> list[Rule]:
        """The rules with these ids (those that fired on a request), in checking order."""
        wanted = set(ids)
        return [rule for rule in self.rules if rule.id in wanted]

    def add(self, rules: Iterable[Rule]) -> None:
        """Append run-time rules after the others, with fresh counters."""
        with self._lock:
            self._added.extend((rule, _Count()) for rule in rules)

    def clear_added(self) -> int:
        """Remove the run-time rules; answer how many there were."""
        with self._lock:
            removed = len(self._added)
            self._added.clear()
            return removed

    def counts(self) -> list[tuple[Rule, str, int, int]]:
        """Every rule with its source (scenario | runtime), requests matched and times fired."""
        with self._lock:
            base = [(rule, "scenario", c.matched, c.fired) for rule, c in self._base]
            added = [(rule, "runtime", c.matched, c.fired) for rule, c in self._added]
            return base + added

    def fire(self, facts: Facts) -> Verdict:
        """Count this request against every rule; answer the rules that fire."""
        verdict = Verdict()
        with self._lock:
            for rule, count in (*self._base, *self._added):
                when = rule.when
                if not when.matches(facts):
                    continue
                count.matched += 1
                n = count.matched
                if n <= when.after or (when.nth is not None and n not in when.nth):
                    continue
                if when.times is not None and count.fired >= when.times:
                    continue
                count.fired += 1
                verdict.fired.append(rule)
        return verdict


# -- building rules from validated data -------------------------------------------------------


def rule_id(data: Mapping[str, Any], position: int) -> str:
    """A rule's id: its own, else `rule-<position>` (1-based)."""
    given = data.get("id")
    return str(given) if given is not None else f"rule-{position}"


def build_rule(data: Mapping[str, Any], position: int) -> Rule:
    """A Rule from schema-checked data (see `rule_problems` for the semantic checks)."""
    ident = rule_id(data, position)
    when = data["when"]
    nth = when.get("nth")
    return Rule(
        id=ident,
        when=When(
            endpoint=when["endpoint"],
            session_id=when.get("session_id"),
            agent=when.get("agent"),
            tool=when.get("tool"),
            tenant=when.get("tenant"),
            nth=None if nth is None else frozenset(int(n) for n in _as_list(nth)),
            after=int(when.get("after", 0)),
            times=None if when.get("times") is None else int(when["times"]),
        ),
        then=_effects(data["then"], ident),
        raw={"id": ident, **{key: value for key, value in data.items() if key != "id"}},
    )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _respond(data: Mapping[str, Any] | None) -> Respond | None:
    if data is None:
        return None
    headers = tuple((str(k), str(v)) for k, v in (data.get("headers") or {}).items())
    return Respond(int(data["status"]), data.get("body"), "body" in data, headers)


def _effects(then: Mapping[str, Any], ident: str) -> Effects:
    block = then.get("block")
    kill = then.get("kill_session")
    late = then.get("after_commit")
    return Effects(
        block=None
        if block is None
        else Reason(
            block.get("code", DEFAULT_BLOCK_CODE),
            block.get("detail", DEFAULT_BLOCK_DETAIL),
            rule_id=ident,
        ),
        answer=next((key for key in ANSWERS if key in then), None),
        respond=_respond(then.get("respond")),
        kill=kill is not None,
        kill_reason=None if kill is None else kill.get("reason"),
        compromise="compromise_session" in then,
        expire_lease="expire_lease" in then,
        advance_clock_s=float(then.get("advance_clock_s", 0)),
        delay_ms=int(then.get("delay_ms", 0)),
        after_commit=None if late is None else _after_commit(late),
    )


def _after_commit(data: Mapping[str, Any]) -> AfterCommit:
    kill = data.get("kill_session")
    return AfterCommit(
        delay_ms=int(data.get("delay_ms", 0)),
        answer=next((key for key in LATE_ANSWERS if key in data), None),
        respond=_respond(data.get("respond")),
        kill=kill is not None,
        kill_reason=None if kill is None else kill.get("reason"),
    )
