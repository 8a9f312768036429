"""Compile and check a `compiled_session` (PROTOCOL.md §4.1); its `compiled_hash` (§3.17).

`compile_session(raw)` checks everything at once and raises `CompileError` listing every
problem, each at a JSON Pointer into the compiled_session. Paths and regexes are parsed
once here, never per request. Every key must be a published field (`published.py`): an
unknown key is an error with a "did you mean", so a typo never silently drops a limit.
Published fields the mock does not enforce are kept in `raw` and listed in `unenforced`.

Required: `schema_version` (exactly the string "1.0"), `agent` (a non-empty string),
`phases` (a list of `{name, initial?, terminal?}`, unique names, exactly one initial, at
least one terminal, every non-terminal phase reachable from the initial one through
`transitions`); in every tool contract `side_effect`, `evidence_class` and
`commit_requirement`.

Defaults: `transitions` {} (a phase may map to null, read as []), `tools` {},
`unmatched_policy` "block", `risk_defaults` {}, no session limits. For a tool: `gate` none
(the risk default decides), no `transitions` (valid in every phase, advances nowhere), no
preconditions, invariants, execution constraints, `forbids_after`, `binds` or
`checkpoint`. A tool's `tool` field, when present, must equal its key in `tools`. `binds`
is the published list `[{name, from: "$.arguments.…" | "$.output.…"}]`, or the older map
`{name: "$.path"}` read from the output. An invariant's rule id is its `rule_id`,
else its `id`. `loop_detection` needs both `window` (>= 0) and `threshold` (>= 1);
`circuit_breaker` thresholds are >= 1; every other limit is >= 0. A precondition may name a
tool that has no contract (it can still commit under `unmatched_policy: allow`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import CompileError, FieldError
from .jsonpath import (
    ErrorLog,
    PathSyntaxError,
    describe,
    parse_path,
    pointer,
    read_amount,
    read_count,
    read_enum,
    read_flag,
    read_names,
    resolve_path,
    resolve_segments,
)
from .operators import (
    Invariant,
    OutputCheck,
    Precondition,
    compile_invariants,
    compile_preconditions,
)
from .published import (
    BIND_FIELDS,
    BREAKER_FIELDS,
    CHECKPOINT_FIELDS,
    EXECUTION_CONSTRAINT_FIELDS,
    LIMIT_FIELDS,
    LOOP_FIELDS,
    PHASE_FIELDS,
    SESSION_ENFORCED,
    SESSION_FIELDS,
    TOOL_FIELDS,
    TOOL_REQUIRED,
    TOOL_TRANSITION_FIELDS,
    check_keys,
    check_sub_fields,
    unenforced_paths,
)

__all__ = [
    "Bind",
    "CompiledSession",
    "Invariant",
    "OutputCheck",
    "Precondition",
    "SessionLimits",
    "ToolContract",
    "compile_contracts_dir",
    "compile_session",
    "compiled_hash",
    "resolve_path",
]

SIDE_EFFECTS = ("read", "write", "destructive", "admin", "financial")
EVIDENCE_CLASSES = ("local_transaction", "ack_only", "unverifiable")
COMMIT_REQUIREMENTS = ("acknowledged", "none")
HIGH_RISK = ("destructive", "financial", "admin")
_KINDS = (
    ("side_effect", SIDE_EFFECTS),
    ("evidence_class", EVIDENCE_CLASSES),
    ("commit_requirement", COMMIT_REQUIREMENTS),
    ("gate", ("allow", "block")),
)
_BIND_ROOTS = ("arguments", "output")


@dataclass(frozen=True)
class SessionLimits:
    """The session-wide limits; None means "no limit"."""

    max_steps: int | None = None
    max_tool_calls: int | None = None
    max_cost_per_session: float | None = None
    max_calls_per_tool: dict[str, int] = field(default_factory=dict)
    loop_window: int | None = None
    loop_threshold: int | None = None
    breaker_consecutive_blocks: int | None = None
    breaker_consecutive_errors: int | None = None


@dataclass(frozen=True)
class Bind:
    """One binding: on commit, the value at `path` (in the call or its output) fills `name`.

    `root` is "call" for the published list form (paths start `$.arguments` or `$.output`)
    and "output" for the older map form (paths into the output).
    """

    name: str
    path: str
    root: str
    segments: tuple[str | int, ...] = field(default=(), compare=False, repr=False)

    def read(self, arguments: Any, output: Any) -> tuple[bool, Any]:
        """(found, value) of this binding for a committed call."""
        data = {"arguments": arguments, "output": output} if self.root == "call" else output
        return resolve_segments(self.segments, data)


@dataclass(frozen=True)
class ToolContract:
    """The compiled contract of one tool."""

    name: str
    side_effect: str = "read"
    evidence_class: str = "local_transaction"
    commit_requirement: str = "none"
    gate: str | None = None
    valid_in_phases: tuple[str, ...] | None = None
    advances_to: str | None = None
    preconditions: tuple[Precondition, ...] = ()
    forbids_after: tuple[str, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    constraints: tuple[Invariant, ...] = ()
    binds: tuple[Bind, ...] = ()
    checkpoint: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledSession:
    """A compiled, checked session contract, ready for the policy to read."""

    raw: dict[str, Any]
    compiled_hash: str
    agent: str
    phases: tuple[str, ...]
    initial_phase: str
    terminal_phases: tuple[str, ...]
    transitions: dict[str, tuple[str, ...]]
    limits: SessionLimits
    risk_defaults: dict[str, str]
    unmatched_policy: str
    tools: dict[str, ToolContract]
    unenforced: tuple[str, ...] = ()

    def legal_next(self, phase: str) -> list[str]:
        """The phases a commit may move to from `phase` (its declared transitions)."""
        return list(self.transitions.get(phase, ()))


def compiled_hash(compiled_session: dict[str, Any]) -> str:
    """`sha256:` + hex SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(compiled_session, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Phase:
    """A phase entry as read from `phases`, with its index for error pointers."""

    index: int
    name: str
    initial: bool
    terminal: bool


def compile_contracts_dir(session_doc: dict[str, Any], tool_docs: dict[str, Any]) -> dict[str, Any]:
    """Build a raw compiled_session from session.yaml and the `<tool>.yaml` documents.

    The session file's own `tools` key, if any, is replaced by the tool documents (sorted
    by name). Nothing is checked here except the top-level shape: pass the result to
    `compile_session`.
    """
    if not isinstance(session_doc, dict):
        raise CompileError([FieldError("", "session.yaml must hold a mapping", "type")])
    first = [key for key in SESSION_ENFORCED if key != "tools"]
    compiled = {key: copy.deepcopy(session_doc[key]) for key in first if key in session_doc}
    for key in sorted(k for k in session_doc if k not in first and k != "tools"):
        compiled[key] = copy.deepcopy(session_doc[key])
    compiled["tools"] = {name: copy.deepcopy(tool_docs[name]) for name in sorted(tool_docs)}
    return compiled


def compile_session(raw: dict[str, Any]) -> CompiledSession:
    """Check a compiled_session and compile it; raise CompileError with every problem."""
    if not isinstance(raw, dict):
        raise CompileError([FieldError("", "compiled_session must be an object", "type")])
    errors = ErrorLog()
    digest = _digest(raw, errors)
    agent, policy = _header(raw, errors)
    phases = _phases(raw.get("phases"), errors)
    names = {p.name for p in phases} if phases is not None else None
    transitions = _transitions(raw.get("transitions"), names, errors)
    initial = _check_graph(phases, transitions, errors)
    limits = _limits(raw.get("session_limits"), errors)
    risk = _risk_defaults(raw.get("risk_defaults"), errors)
    tools = _tools(raw.get("tools"), names, errors)
    if errors.items:
        raise CompileError(errors.items)
    assert phases is not None and initial is not None
    return CompiledSession(
        raw=copy.deepcopy(raw),
        compiled_hash=digest,
        agent=agent,
        phases=tuple(p.name for p in phases),
        initial_phase=initial,
        terminal_phases=tuple(p.name for p in phases if p.terminal),
        transitions=transitions,
        limits=limits,
        risk_defaults=risk,
        unmatched_policy=policy,
        tools=tools,
        unenforced=tuple(unenforced_paths(raw)),
    )


def _digest(raw: dict[str, Any], errors: ErrorLog) -> str:
    """The compiled_hash, or an error when the document is not plain JSON."""
    try:
        return compiled_hash(raw)
    except (TypeError, ValueError) as exc:
        errors.add("", f"compiled_session is not plain JSON: {exc}", "type")
        return ""


def _header(raw: dict[str, Any], errors: ErrorLog) -> tuple[str, str]:
    """Published keys only; schema_version, agent and unmatched_policy."""
    check_keys(raw, "", errors, SESSION_FIELDS, "a session contract")
    if "schema_version" not in raw:
        errors.add("/schema_version", 'schema_version is required ("1.0")', "required")
    elif raw["schema_version"] != "1.0" or not isinstance(raw["schema_version"], str):
        found = describe(raw["schema_version"])
        errors.add("/schema_version", f'schema_version must be "1.0", not {found}', "const")
    agent = raw.get("agent")
    if not isinstance(agent, str) or not agent:
        keyword = "required" if agent is None else "type"
        errors.add("/agent", "agent is required: a non-empty string", keyword)
        agent = ""
    policy = read_enum(raw.get("unmatched_policy"), ("block", "allow"), "/unmatched_policy", errors)
    return agent, policy or "block"


def _phases(value: Any, errors: ErrorLog) -> list[_Phase] | None:
    """The phase list; None when the field itself is missing or not a list."""
    if value is None:
        errors.add(
            "/phases", "phases is required: a list of {name, initial?, terminal?}", "required"
        )
        return None
    if not isinstance(value, list):
        errors.add("/phases", "phases must be a list of {name, initial?, terminal?}", "type")
        return None
    phases: list[_Phase] = []
    seen: set[str] = set()  # a set, so a long phase list compiles in linear time
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            errors.add(pointer("phases", index), "a phase must be an object {name, ...}", "type")
            continue
        check_keys(item, pointer("phases", index), errors, PHASE_FIELDS, "a phase")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            errors.add(pointer("phases", index, "name"), "a phase needs a non-empty name", "type")
            continue
        if name in seen:
            errors.add(pointer("phases", index, "name"), f"duplicate phase {name!r}", "unique")
            continue
        seen.add(name)
        flags = [
            read_flag(item, key, pointer("phases", index, key), errors)
            for key in ("initial", "terminal")
        ]
        phases.append(_Phase(index, name, flags[0], flags[1]))
    return phases


def _transitions(
    value: Any, names: set[str] | None, errors: ErrorLog
) -> dict[str, tuple[str, ...]]:
    """The phase graph; edges from or to unknown phases are errors."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("/transitions", "transitions must map a phase to a list of phases", "type")
        return {}
    graph: dict[str, tuple[str, ...]] = {}
    for source, targets in value.items():
        at = pointer("transitions", source)
        if names is not None and source not in names:
            errors.add(at, f"transition from unknown phase {source!r}", "unknown_phase")
        if targets is None:
            targets = []
        if not isinstance(targets, list):
            errors.add(at, "must be a list of phase names", "type")
            continue
        kept: list[str] = []
        for index, target in enumerate(targets):
            if not isinstance(target, str):
                errors.add(f"{at}/{index}", "a phase name must be a string", "type")
            elif names is not None and target not in names:
                message = f"transition from {source!r} to unknown phase {target!r}"
                errors.add(f"{at}/{index}", message, "unknown_phase")
            else:
                kept.append(target)
        graph[str(source)] = tuple(kept)
    return graph


def _check_graph(
    phases: list[_Phase] | None, graph: dict[str, tuple[str, ...]], errors: ErrorLog
) -> str | None:
    """Exactly one initial phase, at least one terminal, every non-terminal one reachable."""
    if phases is None:
        return None
    initials = [p for p in phases if p.initial]
    if not initials:
        errors.add("/phases", "no phase is marked initial: exactly one must be", "initial_phase")
    for extra in initials[1:]:
        listed = ", ".join(p.name for p in initials)
        message = f"several initial phases ({listed}): exactly one must be"
        errors.add(pointer("phases", extra.index, "initial"), message, "initial_phase")
    if not any(p.terminal for p in phases):
        errors.add("/phases", "no phase is marked terminal: at least one must be", "terminal_phase")
    if len(initials) != 1:
        return None
    start = initials[0].name
    reached, frontier = {start}, [start]
    while frontier:
        for target in graph.get(frontier.pop(), ()):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    for phase in phases:
        if phase.name not in reached and not phase.terminal:
            message = f"phase {phase.name!r} is unreachable from the initial phase {start!r}"
            errors.add(pointer("phases", phase.index), message, "unreachable_phase")
    return start


def _limits(value: Any, errors: ErrorLog) -> SessionLimits:
    """`session_limits`, every number checked; an unknown limit is an error."""
    at = "/session_limits"
    limits = _limit_object(value, at, errors, LIMIT_FIELDS, "session_limits")
    loop_at, breaker_at = at + "/loop_detection", at + "/circuit_breaker"
    loop = _limit_object(
        limits.get("loop_detection"), loop_at, errors, LOOP_FIELDS, "loop_detection"
    )
    if "loop_detection" in limits and isinstance(limits["loop_detection"], dict):
        for key in ("window", "threshold"):
            if loop.get(key) is None:
                errors.add(f"{loop_at}/{key}", f"loop_detection needs {key}", "required")
    breaker = _limit_object(
        limits.get("circuit_breaker"), breaker_at, errors, BREAKER_FIELDS, "circuit_breaker"
    )
    return SessionLimits(
        max_steps=read_count(limits.get("max_steps"), at + "/max_steps", errors),
        max_tool_calls=read_count(limits.get("max_tool_calls"), at + "/max_tool_calls", errors),
        max_cost_per_session=read_amount(
            limits.get("max_cost_per_session"), at + "/max_cost_per_session", errors
        ),
        max_calls_per_tool=_per_tool(limits.get("max_calls_per_tool"), at, errors),
        loop_window=read_count(loop.get("window"), loop_at + "/window", errors),
        loop_threshold=read_count(loop.get("threshold"), loop_at + "/threshold", errors, 1),
        breaker_consecutive_blocks=read_count(
            breaker.get("consecutive_blocks"), breaker_at + "/consecutive_blocks", errors, 1
        ),
        breaker_consecutive_errors=read_count(
            breaker.get("consecutive_errors"), breaker_at + "/consecutive_errors", errors, 1
        ),
    )


def _limit_object(
    value: Any, at: str, errors: ErrorLog, known: tuple[str, ...], what: str
) -> dict[str, Any]:
    """An optional limits object whose keys must all be published ({} when absent or bad)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(at, "must be an object", "type")
        return {}
    check_keys(value, at, errors, known, what, "unknown_limit")
    return value


def _per_tool(value: Any, at: str, errors: ErrorLog) -> dict[str, int]:
    """`max_calls_per_tool`: tool name -> non-negative integer (any tool name)."""
    at += "/max_calls_per_tool"
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(at, "must map a tool name to an integer", "type")
        return {}
    counts = {
        str(name): read_count(limit, at + pointer(name), errors) for name, limit in value.items()
    }
    return {name: limit for name, limit in counts.items() if limit is not None}


def _risk_defaults(value: Any, errors: ErrorLog) -> dict[str, str]:
    """`risk_defaults`: side effect -> allow|block."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("/risk_defaults", "risk_defaults must map a side effect to allow|block", "type")
        return {}
    risk: dict[str, str] = {}
    for key, verdict in value.items():
        at = pointer("risk_defaults", key)
        if key not in SIDE_EFFECTS:
            message = f"unknown side effect {key!r}; expected one of {', '.join(SIDE_EFFECTS)}"
            errors.add(at, message, "enum")
        elif verdict not in ("allow", "block"):
            errors.add(at, f"must be allow or block, not {describe(verdict)}", "enum")
        else:
            risk[key] = verdict
    return risk


def _tools(value: Any, phases: set[str] | None, errors: ErrorLog) -> dict[str, ToolContract]:
    """`tools`: a mapping tool name -> tool contract."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("/tools", "tools must map a tool name to its contract", "type")
        return {}
    compiled = {name: _tool(str(name), doc, phases, errors) for name, doc in value.items()}
    return {name: tool for name, tool in compiled.items() if tool is not None}


def _tool(name: str, doc: Any, phases: set[str] | None, errors: ErrorLog) -> ToolContract | None:
    """One tool contract, or None after logging its problems."""
    at = pointer("tools", name)
    if not isinstance(doc, dict):
        errors.add(at, "a tool contract must be an object", "type")
        return None
    if not name:
        errors.add(at, "a tool name must not be empty", "type")
    check_keys(doc, at, errors, TOOL_FIELDS, f"a tool contract ({name})")
    check_sub_fields(doc, at, errors)
    for key in TOOL_REQUIRED:
        if doc.get(key) is None:
            allowed = ", ".join(dict(_KINDS)[key])
            errors.add(f"{at}/{key}", f"{key} is required: one of {allowed}", "required")
    if "tool" in doc and doc["tool"] != name:
        message = f"tool is {describe(doc['tool'])} but the contract is filed under {name!r}"
        errors.add(at + "/tool", message, "tool_name")
    kinds = {
        key: read_enum(doc.get(key), allowed, f"{at}/{key}", errors) for key, allowed in _KINDS
    }
    if kinds["evidence_class"] == "ack_only" and kinds["side_effect"] in HIGH_RISK:
        message = f"evidence_class ack_only is not allowed on a {kinds['side_effect']} tool"
        errors.add(at + "/evidence_class", message, "ack_only_high_risk")
    valid_in, advances_to = _tool_phases(doc.get("transitions"), at, phases, errors)
    invariants = doc.get("argument_value_invariants")
    return ToolContract(
        name=name,
        side_effect=kinds["side_effect"] or "read",
        evidence_class=kinds["evidence_class"] or "local_transaction",
        commit_requirement=kinds["commit_requirement"] or "none",
        gate=kinds["gate"],
        valid_in_phases=valid_in,
        advances_to=advances_to,
        preconditions=compile_preconditions(
            doc.get("preconditions"), at + "/preconditions", errors
        ),
        forbids_after=read_names(doc.get("forbids_after"), at + "/forbids_after", errors),
        invariants=compile_invariants(invariants, at + "/argument_value_invariants", errors),
        constraints=_constraints(doc.get("execution_constraints"), at, errors),
        binds=_binds(doc.get("binds"), at + "/binds", errors),
        checkpoint=_checkpoint(doc.get("checkpoint"), at + "/checkpoint", errors),
        raw=copy.deepcopy(doc),
    )


def _tool_phases(
    value: Any, at: str, phases: set[str] | None, errors: ErrorLog
) -> tuple[tuple[str, ...] | None, str | None]:
    """A tool's `transitions`: (valid_in_phases or None, advances_to or None)."""
    at += "/transitions"
    if value is None:
        return None, None
    if not isinstance(value, dict):
        errors.add(at, "must be an object {valid_in_phases?, advances_to?}", "type")
        return None, None
    check_keys(value, at, errors, TOOL_TRANSITION_FIELDS, "a tool's transitions")
    valid_in = None
    if value.get("valid_in_phases") is not None:
        valid_in = read_names(value["valid_in_phases"], at + "/valid_in_phases", errors, phases)
    advances_to = value.get("advances_to")
    if advances_to is not None and not isinstance(advances_to, str):
        errors.add(at + "/advances_to", "advances_to must be a phase name", "type")
        advances_to = None
    elif advances_to is not None and phases is not None and advances_to not in phases:
        message = f"advances_to names unknown phase {advances_to!r}"
        errors.add(at + "/advances_to", message, "unknown_phase")
    return valid_in, advances_to


def _checkpoint(value: Any, at: str, errors: ErrorLog) -> dict[str, Any] | None:
    """`checkpoint`: null (none) or an object {reason?: string}."""
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add(at, "checkpoint must be an object {reason?}", "type")
        return None
    check_keys(value, at, errors, CHECKPOINT_FIELDS, "checkpoint")
    if value.get("reason") is not None and not isinstance(value["reason"], str):
        errors.add(at + "/reason", "reason must be a string", "type")
    return dict(value)


def _constraints(value: Any, at: str, errors: ErrorLog) -> tuple[Invariant, ...]:
    """`execution_constraints`: `{arguments: [invariant]}`, checked like argument invariants."""
    at += "/execution_constraints"
    if value is None:
        return ()
    if not isinstance(value, dict):
        errors.add(at, "execution_constraints must be an object {arguments: [...]}", "type")
        return ()
    check_keys(value, at, errors, EXECUTION_CONSTRAINT_FIELDS, "execution_constraints")
    return compile_invariants(value.get("arguments"), at + "/arguments", errors)


def _binds(value: Any, at: str, errors: ErrorLog) -> tuple[Bind, ...]:
    """`binds`: the published list `[{name, from}]`, or the older map `{name: "$.path"}`."""
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple(
            bind
            for name, path in value.items()
            if (bind := _bind(str(name), path, "output", at + pointer(name), errors)) is not None
        )
    if not isinstance(value, list):
        errors.add(at, "binds must be a list of {name, from}", "type")
        return ()
    binds: list[Bind] = []
    for index, item in enumerate(value):
        here = at + pointer(index)
        if not isinstance(item, dict):
            errors.add(here, "a binding must be an object {name, from}", "type")
            continue
        check_keys(item, here, errors, BIND_FIELDS, "a binding")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            errors.add(here + "/name", "name is required: the binding's name", "required")
            continue
        bind = _bind(name, item.get("from"), "call", here + "/from", errors)
        if bind is not None:
            binds.append(bind)
    return tuple(binds)


def _bind(name: str, path: Any, root: str, at: str, errors: ErrorLog) -> Bind | None:
    """One binding whose path is checked (and, in the list form, rooted in the call)."""
    expected = "a JSONPath like $.arguments.order_id or $.output.order_id"
    if root == "output":
        expected = "a JSONPath into the output, like $.order_id"
    if not isinstance(path, str):
        errors.add(at, f"must be {expected}", "type")
        return None
    try:
        segments = parse_path(path)
    except PathSyntaxError as exc:
        errors.add(at, str(exc), "binds")
        return None
    if root == "call" and (not segments or segments[0] not in _BIND_ROOTS):
        errors.add(at, f"{path!r} must start with $.arguments or $.output", "binds")
        return None
    return Bind(name, path, root, segments)
