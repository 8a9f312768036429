"""Turn a schema-valid scenario document into a WorldSpec, collecting every semantic problem.

Nothing here reads YAML or files: contracts folders come through a `ContractsLoader`
callback (see loading.py), and every problem is a `Problem` located by a JSON Pointer
into the scenario document (or, for a contracts folder, already located in its own file).
What the document leaves out comes from the `base` spec (the server's settings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..clock import ClockRangeError, parse_timestamp, seconds_left
from ..domain.contracts import CompiledSession, compile_session
from ..domain.expect import Expectation, build_expectation, expectation_problems
from ..domain.rulecheck import rule_problems
from ..domain.rules import Rule, build_rule, rule_id
from ..domain.sessionops import LIMIT_OPTIONS, Options
from ..domain.world import PlanSeed, SessionSeed, WorldSpec
from ..errors import CompileError

CREATE_FIELDS = ("session_id", "agent", "environment", "mode", "enforcement", "holder_id")
OPTION_FIELDS = (
    "prepared_ttl_s",
    "lease_ttl_s",
    "require_receipts_before_preflight",
    "fail_closed_without_plan",
    "max_delay_ms",
    *LIMIT_OPTIONS,
)


@dataclass(frozen=True)
class Problem:
    """A semantic problem at a pointer; `file`/`line`/`column` set when already located."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None


# (contracts_dir as written, pointer of that value, compile it?) -> the raw compiled_session
# and, when asked, its compiled form; None when the folder has problems (the loader reports
# them itself, located in the folder's own files).
Artifact = tuple[dict[str, Any], CompiledSession | None]
ContractsLoader = Callable[[str, str, bool], Artifact | None]


class SpecBuilder:
    """Builds one WorldSpec from a checked document; `problems` lists what is wrong."""

    def __init__(self, doc: Mapping[str, Any], base: WorldSpec, contracts: ContractsLoader) -> None:
        self.doc = doc
        self.base = base
        self.contracts = contracts
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        """Record one problem at a pointer into the scenario document."""
        self.problems.append(Problem(path, message))

    def build(self, default_name: str) -> WorldSpec:
        """The spec (meaningful only when `problems` stays empty)."""
        doc, base = self.doc, self.base
        options = doc.get("options", {})
        clock = doc.get("clock", {})
        if "start" in clock:
            self._check_timestamp(clock["start"])
        runtime_options = _options(base.options, options)
        self._check_time_left(clock.get("start", base.clock_start), runtime_options, doc)
        api_keys = self._tenants(doc["tenants"]) if "tenants" in doc else dict(base.api_keys)
        tenants = list(dict.fromkeys(api_keys.values()))
        plans = self._plans(doc["plans"], tenants) if "plans" in doc else base.plans
        return dataclasses.replace(
            base,
            name=doc.get("scenario", default_name),
            description=doc.get("description", ""),
            seed=int(doc.get("seed", base.seed)),
            clock_start=clock.get("start", base.clock_start),
            clock_mode=clock.get("mode", base.clock_mode),
            options=runtime_options,
            validation=options.get("validation", base.validation),
            max_body_bytes=int(options.get("max_body_bytes", base.max_body_bytes)),
            journal_limit=int(options.get("journal_limit", base.journal_limit)),
            api_keys=api_keys,
            plans=plans,
            sessions=self._sessions(doc.get("sessions", []), tenants, plans),
            rules=tuple(self._rules(doc.get("rules", []), tenants)),
            expect=tuple(self._expect(doc.get("expect", []))),
        )

    def _check_timestamp(self, text: str) -> None:
        try:
            parse_timestamp(text)
        except ClockRangeError as exc:
            self.problem("/clock/start", str(exc))
        except ValueError as exc:
            self.problem("/clock/start", f"not a valid RFC 3339 timestamp: {exc}")

    def _check_time_left(self, start: str, options: Options, doc: Mapping[str, Any]) -> None:
        """Every TTL and rule clock advance must fit before the clock's last instant (§8)."""
        try:
            left = seconds_left(parse_timestamp(start))
        except ValueError:
            return  # reported at /clock/start
        given = doc.get("options", {})
        end = "9999-12-31T23:59:59.999Z"
        for name in ("prepared_ttl_s", "lease_ttl_s"):
            ttl = getattr(options, name)
            if ttl is not None and ttl > left:
                at = f"/options/{name}" if name in given else "/clock/start"
                self.problem(
                    at,
                    f"{name} {ttl:g} s from clock.start {start} ends after {end}, the clock's "
                    f"last instant ({left:.3f} s are left)",
                )
        for i, rule in enumerate(doc.get("rules", [])):
            then = rule.get("then") if isinstance(rule, Mapping) else None
            step = then.get("advance_clock_s") if isinstance(then, Mapping) else None
            if isinstance(step, int | float) and step > left:
                self.problem(
                    f"/rules/{i}/then/advance_clock_s",
                    f"advance_clock_s {step:g} would take the clock past {end} "
                    f"({left:.3f} s are left from clock.start {start})",
                )

    def _tenants(self, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        keys: dict[str, str] = {}
        names: set[str] = set()
        for i, tenant in enumerate(items):
            name = tenant["name"]
            if name in names:
                self.problem(f"/tenants/{i}/name", f"duplicate tenant {name!r}")
            names.add(name)
            for j, key in enumerate(tenant["api_keys"]):
                if key in keys:
                    self.problem(
                        f"/tenants/{i}/api_keys/{j}",
                        f"this key already belongs to tenant {keys[key]!r}; a key has one tenant",
                    )
                keys.setdefault(key, name)
        return keys

    def _tenant(self, item: Mapping[str, Any], at: str, tenants: list[str]) -> str:
        """The item's tenant (default: the first one), reporting an unknown one."""
        tenant = str(item.get("tenant", tenants[0] if tenants else ""))
        if tenant not in tenants:
            self.problem(f"{at}/tenant", f"unknown tenant {tenant!r} (known: {', '.join(tenants)})")
        return tenant

    def _plans(
        self, items: Sequence[Mapping[str, Any]], tenants: list[str]
    ) -> tuple[PlanSeed, ...]:
        plans: list[PlanSeed] = []
        seen: set[tuple[str, str, str]] = set()
        for i, item in enumerate(items):
            at = f"/plans/{i}"
            tenant = self._tenant(item, at, tenants)
            environment = item.get("environment", "development")
            status = item.get("status", "approved")
            key = (tenant, item["agent"], environment)
            if key in seen:
                self.problem(at, f"a second plan for agent {key[1]!r} in {environment} ({tenant})")
            seen.add(key)
            raw, compiled = self._artifact(item, at, status == "approved")
            plans.append(PlanSeed(item["agent"], environment, status, raw, tenant, compiled))
        return tuple(plans)

    def _artifact(
        self, item: Mapping[str, Any], at: str, approved: bool
    ) -> tuple[dict[str, Any] | None, CompiledSession | None]:
        """A contract, inline or from a folder: raw, and compiled when `approved`."""
        if "compiled_session" in item and "contracts_dir" in item:
            self.problem(f"{at}/contracts_dir", "give compiled_session or contracts_dir, not both")
            return None, None
        if "compiled_session" in item:
            raw = dict(item["compiled_session"])
            return raw, self._compile(raw, at) if approved else None
        if "contracts_dir" in item:
            found = self.contracts(item["contracts_dir"], f"{at}/contracts_dir", approved)
            return found if found is not None else (None, None)
        if approved:
            self.problem(at, "an approved plan needs compiled_session or contracts_dir")
        return None, None

    def _compile(self, raw: dict[str, Any], at: str) -> CompiledSession | None:
        """Compile a contract; a failure is reported at each error's pointer."""
        try:
            return compile_session(raw)
        except CompileError as error:
            for item in error.errors:
                self.problem(
                    f"{at}/compiled_session{item.path}", f"does not compile: {item.message}"
                )
            return None

    def _sessions(
        self, items: Sequence[Mapping[str, Any]], tenants: list[str], plans: tuple[PlanSeed, ...]
    ) -> tuple[SessionSeed, ...]:
        seeds: list[SessionSeed] = []
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(items):
            at = f"/sessions/{i}"
            tenant = self._tenant(item, at, tenants)
            if "session_id" in item:
                if (tenant, item["session_id"]) in seen:
                    self.problem(f"{at}/session_id", f"duplicate session {item['session_id']!r}")
                seen.add((tenant, item["session_id"]))
            contract, source = self._session_contract(item, at, tenant, plans)
            self._check_phase(item, at, contract)
            create = {key: item[key] for key in CREATE_FIELDS if key in item}
            create["metadata"] = dict(item.get("metadata", {}))
            seeds.append(
                SessionSeed(
                    tenant=tenant,
                    create=create,
                    contract=contract,
                    source=source,
                    state_version=int(item.get("state_version", 0)),
                    phase=item.get("phase"),
                    status=item.get("status", "active"),
                )
            )
        return tuple(seeds)

    def _session_contract(
        self, item: Mapping[str, Any], at: str, tenant: str, plans: tuple[PlanSeed, ...]
    ) -> tuple[CompiledSession | None, str]:
        """As create would resolve it (§3.1): the given contract, else the approved plan."""
        given = item.get("contract")
        if given is None:
            environment = item.get("environment", "development")
            for plan in plans:
                if (plan.tenant, plan.agent, plan.environment) == (
                    tenant,
                    item["agent"],
                    environment,
                ) and plan.compiled is not None:
                    return plan.compiled, "plan"
            return None, "none"
        if "compiled_hash" in given:
            for plan in plans:
                compiled = plan.compiled
                if (
                    plan.tenant == tenant
                    and compiled
                    and compiled.compiled_hash == given["compiled_hash"]
                ):
                    return compiled, "plan"
            self.problem(f"{at}/contract/compiled_hash", "no approved plan of this tenant has it")
            return None, "none"
        return self._artifact(given, f"{at}/contract", True)[1], "request"

    def _check_phase(
        self, item: Mapping[str, Any], at: str, contract: CompiledSession | None
    ) -> None:
        phase = item.get("phase")
        if phase is None:
            return
        known = contract.phases if contract is not None else ("start",)
        if phase not in known:
            self.problem(f"{at}/phase", f"unknown phase {phase!r} (expected one of {list(known)})")

    def _rules(self, items: Sequence[Mapping[str, Any]], tenants: list[str]) -> list[Rule]:
        rules, problems = build_rules(items, tenants, taken=())
        for path, message in problems:
            self.problem("/rules" + path, message)
        return rules

    def _expect(self, items: Sequence[Mapping[str, Any]]) -> list[Expectation]:
        built, problems = build_expectations(items)
        for path, message in problems:
            self.problem("/expect" + path, message)
        return built


def _options(base: Options, given: Mapping[str, Any]) -> Options:
    """Runtime options: the given ones over the base's."""
    return dataclasses.replace(base, **{key: given[key] for key in OPTION_FIELDS if key in given})


def build_rules(
    items: Sequence[Mapping[str, Any]],
    tenants: Sequence[str] | None,
    taken: Sequence[str],
    offset: int = 0,
) -> tuple[list[Rule], list[tuple[str, str]]]:
    """Rules from schema-valid items numbered from `offset + 1`, and their problems.

    `taken` are ids already in use (the scenario's rules, for rules added at run time).
    Problem pointers are relative to the list (`/0/when/tool`).
    """
    rules: list[Rule] = []
    problems: list[tuple[str, str]] = []
    ids = set(taken)
    for i, item in enumerate(items):
        problems += [(f"/{i}{path}", message) for path, message in rule_problems(item, tenants)]
        ident = rule_id(item, offset + i + 1)
        if ident in ids:
            where = f"/{i}/id" if "id" in item else f"/{i}"
            problems.append((where, f"duplicate rule id {ident!r}"))
        ids.add(ident)
        rules.append(build_rule(item, offset + i + 1))
    return rules, problems


def build_expectations(
    items: Sequence[Mapping[str, Any]],
) -> tuple[list[Expectation], list[tuple[str, str]]]:
    """Expectations from schema-valid items, and their problems (pointers like `/0/count`)."""
    problems = [
        (f"/{i}{path}", message)
        for i, item in enumerate(items)
        for path, message in expectation_problems(item)
    ]
    return [build_expectation(item) for item in items], problems
