"""A world: everything one loaded scenario determines, built fresh on load and on reset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..clock import DEFAULT_START, Clock
from ..ids import IdFactory
from .runtime import Runtime
from .sessionops import Context, Options

DEFAULT_API_KEY = "vsk_test_default"
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class PlanSeed:
    """A governance plan given in settings or a scenario (PROTOCOL.md §3.17, §5)."""

    agent: str
    environment: str = "development"
    status: str = "approved"
    compiled_session: dict[str, Any] | None = None
    tenant: str = DEFAULT_TENANT


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


class World:
    """A runtime with its own clock, ids and keys, built from a spec."""

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.clock = Clock(spec.clock_start, spec.clock_mode)
        self.ids = IdFactory(spec.seed)
        self.ctx = Context(self.clock, self.ids, Options(**vars(spec.options)))
        self.runtime = Runtime(self.ctx)
        for plan in spec.plans:
            self.runtime.add_plan(
                plan.tenant, plan.agent, plan.environment, plan.status, plan.compiled_session
            )

    def tenant_for(self, api_key: str) -> str | None:
        """The tenant an API key belongs to, or None for an unknown key."""
        return self.spec.api_keys.get(api_key)
