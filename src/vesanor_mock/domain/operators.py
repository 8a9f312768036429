"""Operators, and the checks built from them: argument invariants and precondition outputs.

Values compare as JSON values, not Python ones: `true` is not `1`, `1` equals `1.0`, lists
and objects compare item by item. Numeric operators (`gte`, `lte`, `gt`, `lt`) need a
number (never a boolean) on both sides; anything else fails (fail closed). `regex` is a
search anywhere in a string, run by a linear-time engine (see regex.py);
`min_length`/`max_length` apply to strings and lists. A path that is not found fails
every operator except `exists: false` and `not_equals` (an absent value equals nothing).

The checks are compiled here once (paths parsed, regexes compiled); each problem goes to an
`ErrorLog` at its JSON Pointer, with keyword `invariant` or `precondition` (or `type`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .jsonpath import (
    ErrorLog,
    PathSyntaxError,
    Segment,
    describe,
    parse_path,
    pointer,
    read_items,
    resolve_segments,
)
from .published import PRECONDITION_FIELDS, check_keys
from .regex import Pattern, RegexRefused, compile_regex

INVARIANT_OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "exists",
    "gte",
    "lte",
    "gt",
    "lt",
    "one_of",
    "regex",
    "min_length",
    "max_length",
    "ref",
)
"""Operators allowed in `argument_value_invariants` and `execution_constraints`.

`ref` names a session binding: the argument must equal the binding's value (a binding not
yet set fails: fail closed); the policy reports it as `binding_mismatch`."""

OUTPUT_OPERATORS: tuple[str, ...] = ("equals", "exists", "gte", "lte")
"""Operators allowed in a precondition's `with_output` checks."""

_NUMERIC = ("gte", "lte", "gt", "lt")
_LENGTH = ("min_length", "max_length")


def is_number(value: Any) -> bool:
    """True for a JSON number (int or float, but not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(left: Any, right: Any) -> bool:
    """Equality of two JSON values (booleans are not numbers; 1 == 1.0)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and bool(left == right)


def operand_problem(operator: str, value: Any) -> str | None:
    """Why `value` is not a valid operand for `operator` (None when it is)."""
    if operator == "exists" and not isinstance(value, bool):
        return "exists takes true or false"
    if operator in _NUMERIC and not is_number(value):
        return f"{operator} takes a number"
    if operator == "one_of" and not isinstance(value, list):
        return "one_of takes a list of values"
    if operator in _LENGTH and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"{operator} takes a non-negative integer"
    if operator in _LENGTH and value < 0:
        return f"{operator} takes a non-negative integer"
    if operator == "ref" and (not isinstance(value, str) or not value):
        return "ref takes the name of a session binding"
    if operator == "regex":
        if not isinstance(value, str):
            return "regex takes a string"
        try:
            compile_regex(value)
        except RegexRefused as exc:
            return f"regex does not compile: {exc}"
    return None


def holds(
    operator: str, found: bool, actual: Any, expected: Any, pattern: Pattern | None = None
) -> bool:
    """Whether the value at a path (found, actual) satisfies `operator expected`."""
    if operator == "exists":
        return found is bool(expected)
    if not found:
        return operator == "not_equals"
    if operator == "equals":
        return json_equal(actual, expected)
    if operator == "not_equals":
        return not json_equal(actual, expected)
    if operator in _NUMERIC:
        return is_number(actual) and is_number(expected) and _compare(operator, actual, expected)
    if operator == "one_of":
        return isinstance(expected, list) and any(json_equal(actual, v) for v in expected)
    if operator == "regex":
        regex = pattern if pattern is not None else compile_regex(str(expected))
        return isinstance(actual, str) and regex.search(actual) is not None
    if operator in _LENGTH and isinstance(actual, str | list):
        size, bound = len(actual), int(expected)
        return size >= bound if operator == "min_length" else size <= bound
    return False


def _compare(operator: str, actual: float, expected: float) -> bool:
    """Numeric comparison by operator name."""
    if operator == "gte":
        return actual >= expected
    if operator == "lte":
        return actual <= expected
    if operator == "gt":
        return actual > expected
    return actual < expected


def failure_detail(operator: str, expected: Any, found: bool, actual: Any) -> str:
    """`expected <operator> <value>, found <actual>` (or `found nothing`)."""
    seen = describe(actual) if found else "nothing"
    return f"expected {operator} {describe(expected)}, found {seen}"


@dataclass(frozen=True)
class OutputCheck:
    """One `with_output` check on a prior tool's committed output."""

    path: str
    operator: str
    value: Any
    segments: tuple[Segment, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.segments and self.path != "$":
            object.__setattr__(self, "segments", parse_path(self.path))

    def evaluate(self, data: Any) -> tuple[bool, bool, Any]:
        """(holds, found, actual) for this check against `data`."""
        found, actual = resolve_segments(self.segments, data)
        return holds(self.operator, found, actual, self.value), found, actual


@dataclass(frozen=True)
class Precondition:
    """A tool that must have committed before, optionally with checks on its latest output."""

    requires_prior_tool: str
    with_output: tuple[OutputCheck, ...] = ()


@dataclass(frozen=True)
class Invariant:
    """One argument-value invariant; `pattern` is its regex, compiled at load time."""

    path: str
    operator: str
    value: Any
    rule_id: str | None = None
    segments: tuple[Segment, ...] = field(default=(), compare=False, repr=False)
    pattern: Pattern | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.segments and self.path != "$":
            object.__setattr__(self, "segments", parse_path(self.path))
        if self.operator == "regex" and self.pattern is None:
            object.__setattr__(self, "pattern", compile_regex(str(self.value)))

    def evaluate(self, data: Any, bindings: dict[str, Any] | None = None) -> tuple[bool, bool, Any]:
        """(holds, found, actual) for this invariant against `data` (the arguments).

        For `ref`, the expected value is the session binding named by `value`.
        """
        found, actual = resolve_segments(self.segments, data)
        if self.operator == "ref":
            bound = bindings is not None and self.value in bindings
            expected = bindings[self.value] if bindings is not None and bound else None
            return bound and found and json_equal(actual, expected), found, actual
        return holds(self.operator, found, actual, self.value, self.pattern), found, actual


def _segments(item: dict[str, Any], at: str, log: ErrorLog, keyword: str) -> tuple[Segment, ...]:
    """The parsed `path` of a check (an error, and `()`, when it is bad)."""
    path = item.get("path")
    if not isinstance(path, str):
        log.add(at + "/path", "path is required: a JSONPath like $.amount", keyword)
        return ()
    try:
        return parse_path(path)
    except PathSyntaxError as exc:
        log.add(at + "/path", str(exc), keyword)
        return ()


def compile_invariants(value: Any, at: str, log: ErrorLog) -> tuple[Invariant, ...]:
    """`argument_value_invariants`: a list of {path, operator, value, rule_id? | id?}."""
    compiled = [
        _invariant(item, here, log) for here, item in read_items(value, at, log, "invariants")
    ]
    return tuple(invariant for invariant in compiled if invariant is not None)


def _invariant(item: Any, at: str, log: ErrorLog) -> Invariant | None:
    """One invariant, or None after logging what is wrong with it."""
    if not isinstance(item, dict):
        log.add(at, "an invariant must be an object {path, operator, value}", "invariant")
        return None
    mark = len(log)
    segments = _segments(item, at, log, "invariant")
    operator, value = item.get("operator"), item.get("value")
    if not isinstance(operator, str) or operator not in INVARIANT_OPERATORS:
        known = ", ".join(INVARIANT_OPERATORS)
        message = f"unknown operator {describe(operator)}; expected one of {known}"
        log.add(at + "/operator", message, "invariant")
    elif "value" not in item:
        log.add(at + "/value", f"{operator} needs a value", "invariant")
    elif (problem := operand_problem(operator, value)) is not None:
        log.add(at + "/value", problem, "invariant")
    id_key = "rule_id" if "rule_id" in item else "id"
    rule_id = item.get(id_key)
    if rule_id is not None and not isinstance(rule_id, str):
        log.add(at + pointer(id_key), "a rule id must be a string", "invariant")
    if len(log) > mark:
        return None
    pattern = compile_regex(str(value)) if operator == "regex" else None
    return Invariant(str(item["path"]), str(operator), value, rule_id, segments, pattern)


def compile_preconditions(value: Any, at: str, log: ErrorLog) -> tuple[Precondition, ...]:
    """`preconditions`: a list of {requires_prior_tool, with_output?: [check]}."""
    items = read_items(value, at, log, "preconditions")
    compiled = [_precondition(item, here, log) for here, item in items]
    return tuple(precondition for precondition in compiled if precondition is not None)


def _precondition(item: Any, at: str, log: ErrorLog) -> Precondition | None:
    """One precondition, or None after logging what is wrong with it."""
    if not isinstance(item, dict):
        message = "a precondition must be an object {requires_prior_tool, with_output?}"
        log.add(at, message, "precondition")
        return None
    mark = len(log)
    check_keys(item, at, log, PRECONDITION_FIELDS, "a precondition")
    tool = item.get("requires_prior_tool")
    if not isinstance(tool, str) or not tool:
        message = "requires_prior_tool must name a tool"
        log.add(at + "/requires_prior_tool", message, "precondition")
    items = read_items(item.get("with_output"), at + "/with_output", log, "with_output")
    checks = [_output_check(check, here, log) for here, check in items]
    if len(log) > mark or not isinstance(tool, str):
        return None
    return Precondition(tool, tuple(check for check in checks if check is not None))


def _output_check(item: Any, at: str, log: ErrorLog) -> OutputCheck | None:
    """One with_output check {path, equals|exists|gte|lte: value}, or None after errors."""
    if not isinstance(item, dict):
        log.add(
            at, "a with_output check must be an object {path, <operator>: value}", "precondition"
        )
        return None
    mark = len(log)
    segments = _segments(item, at, log, "precondition")
    for key in INVARIANT_OPERATORS:
        if key in item and key not in OUTPUT_OPERATORS:
            message = f"{key} is not allowed in with_output; use equals, exists, gte or lte"
            log.add(at + pointer(key), message, "precondition")
    used = [key for key in OUTPUT_OPERATORS if key in item]
    if len(used) != 1:
        message = f"a check needs exactly one of equals, exists, gte, lte (found {len(used)})"
        log.add(at, message, "precondition")
    elif (problem := operand_problem(used[0], item[used[0]])) is not None:
        log.add(at + pointer(used[0]), problem, "precondition")
    if len(log) > mark:
        return None
    return OutputCheck(item["path"], used[0], item[used[0]], segments)
