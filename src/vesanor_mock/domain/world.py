"""A world: everything one loaded scenario determines, built fresh on load and on reset.

A WorldSpec is immutable and holds everything expensive already done (contracts compiled,
rules built); building a World from it only creates objects, so a reset is cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import DEFAULT_START, Clock
from ..ids import IdFactory
from .checker import Checker
from .contracts import CompiledSession, compile_session
from .coverage import Coverage
from .expect import Expectation
from .journal import DEFAULT_LIMIT, Draft, Entry, Journal
from .models import Killed, Session
from .rules import Rule, RuleBook
from .runtime import Runtime
from .sessionops import Context, Options

DEFAULT_API_KEY = "vsk_test_default"
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class PlanSeed:
    """A governance plan given in settings or a scenario (PROTOCOL.md §3.17, §5).

    `compiled` is the approved contract compiled once at load; None compiles on build.
    """

    agent: str
    environment: str = "development"
    status: str = "approved"
    compiled_session: dict[str, Any] | None = None
    tenant: str = DEFAULT_TENANT
    compiled: CompiledSession | None = None


@dataclass(frozen=True)
class SessionSeed:
    """A session that exists when the scenario starts: create fields plus state (§5)."""

    tenant: str
    create: dict[str, Any]
    contract: CompiledSession | None = None
    source: str = "none"
    state_version: int = 0
    phase: str | None = None
    status: str = "active"


@dataclass(frozen=True)
class WorldSpec:
    """The initial state of a world; building it twice gives two identical worlds."""

    seed: int = 0
    clock_start: str = DEFAULT_START
    clock_mode: str = "frozen"
    options: Options = field(default_factory=Options)
    api_keys: dict[str, str] = field(default_factory=lambda: {DEFAULT_API_KEY: DEFAULT_TENANT})
    plans: tuple[PlanSeed, ...] = ()
    validation: str = "strict"
    max_body_bytes: int = 1024 * 1024
    name: str | None = None
    description: str = ""
    sessions: tuple[SessionSeed, ...] = ()
    rules: tuple[Rule, ...] = ()
    expect: tuple[Expectation, ...] = ()
    journal_limit: int = DEFAULT_LIMIT
    body_timeout_s: float = 30.0  # a request body must arrive whole within this time

    @property
    def tenants(self) -> list[str]:
        """Every tenant that has a key, in first-seen order."""
        return list(dict.fromkeys(self.api_keys.values()))


def compile_plans(plans: tuple[PlanSeed, ...]) -> tuple[PlanSeed, ...]:
    """The plans with every approved contract compiled now (a broken one raises)."""
    return tuple(
        dataclasses.replace(plan, compiled=compile_session(plan.compiled_session))
        if plan.status == "approved" and plan.compiled_session is not None and plan.compiled is None
        else plan
        for plan in plans
    )


class World:
    """A runtime with its own clock, ids, keys, rules and journal, built from a spec."""

    def __init__(self, spec: WorldSpec, coverage: Coverage | None = None) -> None:
        self.spec = spec
        self.coverage = coverage  # the server's, shared by the worlds it builds
        self.clock = Clock(spec.clock_start, spec.clock_mode)
        self.ids = IdFactory(spec.seed)
        self.ctx = Context(self.clock, self.ids, dataclasses.replace(spec.options))
        self.runtime = Runtime(self.ctx)
        self.rules = RuleBook(spec.rules)
        self.journal = Journal(spec.journal_limit)
        self.checker = Checker()
        # The listener holds the checker, rules and coverage, never the world: a cycle through
        # the journal would keep a reset world alive until a garbage collection.
        self.journal.listeners.append(_observer(self.checker, self.rules, coverage))
        for plan in spec.plans:
            self.runtime.add_plan(
                plan.tenant,
                plan.agent,
                plan.environment,
                plan.status,
                plan.compiled_session,
                plan.compiled,
            )
        for seed in spec.sessions:
            self._seed(seed)

    def _seed(self, seed: SessionSeed) -> Session:
        """Create one pre-seeded session and set its state as the scenario says."""
        session = self.runtime.seed_session(seed.tenant, seed.create, seed.contract, seed.source)
        session.state_version = seed.state_version
        if seed.phase is not None:
            session.phase = seed.phase
        if seed.status == "killed":
            session.status = "killed"
            session.authority_state = "killed"
            session.killed = Killed(at=self.ctx.now(), reason="seeded killed", actor="scenario")
        return session

    def pending_status(self, session_id: str, pending_call_id: str) -> str | None:
        """A pending call's status ("pending", ...), None when its session is killed or gone."""
        runtime = self.runtime
        with runtime.lock:
            for (_, sid), session in runtime.sessions.items():
                if sid != session_id or session.status == "killed":
                    continue
                pending = session.pending.get(pending_call_id)
                if pending is not None:
                    return pending.status
        return None

    def tenant_for(self, api_key: str) -> str | None:
        """The tenant an API key belongs to, or None for an unknown key."""
        return self.spec.api_keys.get(api_key)


def _observer(
    checker: Checker, rules: RuleBook, coverage: Coverage | None
) -> Callable[[Entry, Draft], None]:
    """What a world does with each journaled request: the client checks, then coverage."""

    def observe(entry: Entry, draft: Draft) -> None:
        note = checker.observe_entry(entry, draft)
        if coverage is not None:
            fired = rules.fired(entry.rules_fired) if entry.rules_fired else ()
            coverage.observe(note, fired)

    return observe
