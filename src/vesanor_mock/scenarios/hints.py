"""Problems said in the project's words: schema errors rephrased, "did you mean", warnings.

- `schema_message` turns a validator's error into a sentence about the scenario: an unknown
  key or endpoint gets the closest known one ("did you mean `options`?"), `nth: "2"` says it
  wants an integer or a list of integers, `stale_state_version: yes` gets the YAML 1.2 hint
  (write `true`), never raw validator text such as "is not valid under any of the given
  schemas".
- `name_warnings` lists the rules that name a `tool`, `agent` or `session_id` nothing in the
  scenario defines (PROTOCOL.md §5): they load, but a warning names them, with the closest
  known name when one is close.

Plain Python: the schema comes in as data.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..domain.world import WorldSpec

YAML11_BOOLEANS = frozenset(
    word
    for base in ("yes", "no", "on", "off", "y", "n")
    for word in (base, base.capitalize(), base.upper())
)


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name closest to `word`, when one is close enough to be a typo."""
    found = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """` (did you mean `x`?)`, or nothing when no known name is close."""
    match = closest(word, known)
    return f" (did you mean `{match}`?)" if match else ""


def schema_message(
    schema: Mapping[str, Any], data: Any, path: str, keyword: str, message: str
) -> str:
    """A schema error at `path` of `data` as a sentence in the scenario's words."""
    parts = [_unescape(p) for p in path.split("/")[1:]] if path else []
    if keyword == "additionalProperties" and parts:
        parent = node_at(schema, parts[:-1])
        known = list((parent or {}).get("properties", {}))
        name = parts[-1]
        hint = did_you_mean(name, known)
        if not hint and known:
            hint = f" (expected one of: {', '.join(known)})"
        return f"unknown key {name!r}{hint}"
    found, value = value_at(data, parts)
    if not found:
        return message
    node = node_at(schema, parts) or {}
    if keyword == "enum" and isinstance(value, str):
        allowed = [str(v) for v in node.get("enum", [])]
        what = parts[-1] if parts and not parts[-1].isdigit() else "value"
        hint = did_you_mean(value, allowed) or f" (expected one of: {', '.join(allowed)})"
        return f"unknown {what} {value!r}{hint}"
    if keyword in ("anyOf", "oneOf"):
        choices = " or ".join(describe(branch, schema) for branch in node.get(keyword, []))
        return f"expected {choices}, got {_shown(value)}{_unquote_hint(value)}"
    if keyword in ("const", "type") and _wants_boolean(node) and value in YAML11_BOOLEANS:
        wanted = json.dumps(node["const"]) if "const" in node else "true or false"
        return (
            f"expected {wanted}, got the string {value!r}: scenarios are YAML 1.2, where only "
            f"true and false are booleans; write {'true' if 'const' in node else 'true or false'}"
        )
    if keyword == "type":
        return message + _unquote_hint(value)
    if keyword == "minProperties" and isinstance(value, dict) and not value:
        keys = ", ".join(node.get("properties", {}))
        return f"expected at least one of: {keys}; got an empty mapping"
    return message


def describe(node: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """A short noun phrase for a schema branch: `an integer >= 1`, `a list of integers >= 1`."""
    node = _resolve(node, schema)
    kind = node.get("type")
    if kind == "array":
        item = describe(node.get("items", {}), schema)
        return "a list of " + _plural(item)
    if kind == "integer" or kind == "number":
        noun = "an integer" if kind == "integer" else "a number"
        if "minimum" in node:
            return f"{noun} >= {node['minimum']}"
        if "exclusiveMinimum" in node:
            return f"{noun} > {node['exclusiveMinimum']}"
        return noun
    if kind == "string":
        return "a string"
    if kind == "boolean":
        return "true or false"
    if kind == "object":
        return "a mapping"
    if "const" in node:
        return json.dumps(node["const"])
    return "a value"


def node_at(schema: Mapping[str, Any], parts: Sequence[str]) -> dict[str, Any] | None:
    """The schema node that describes the value at `parts` (None when it cannot tell)."""
    node = _resolve(schema, schema)
    for part in parts:
        if "properties" in node and part in node["properties"]:
            node = _resolve(node["properties"][part], schema)
        elif "items" in node and part.isdigit():
            node = _resolve(node["items"], schema)
        elif isinstance(node.get("additionalProperties"), dict):
            node = _resolve(node["additionalProperties"], schema)
        else:
            return None
    return dict(node)


def value_at(data: Any, parts: Sequence[str]) -> tuple[bool, Any]:
    """(True, the value) at `parts` of `data`, or (False, None) when there is none."""
    for part in parts:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return False, None
    return True, data


def name_warnings(
    spec: WorldSpec, rules: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[tuple[str, str]]:
    """(pointer, message) for each rule filter naming something nothing in the scenario defines.

    `rules` are (pointer of the rule, the rule as written). Tools are those of every plan's
    and pre-seeded session's contract; agents those of plans and sessions; session ids those
    of pre-seeded sessions.
    """
    contracts = [plan.compiled for plan in spec.plans] + [seed.contract for seed in spec.sessions]
    known = {
        "tool": {name for c in contracts if c is not None for name in c.tools},
        "agent": {plan.agent for plan in spec.plans}
        | {str(seed.create.get("agent")) for seed in spec.sessions},
        "session_id": {
            str(seed.create["session_id"]) for seed in spec.sessions if "session_id" in seed.create
        },
    }
    what = {
        "tool": ("no contract in this scenario has tool", "a client's own contract has it"),
        "agent": ("no plan or session in this scenario is for agent", "a client uses that agent"),
        "session_id": (
            "no session in this scenario has session_id",
            "a client creates a session with that id",
        ),
    }
    warnings: list[tuple[str, str]] = []
    for at, rule in rules:
        when = rule.get("when", {})
        for key, names in known.items():
            value = when.get(key)
            if not isinstance(value, str) or value in names:
                continue
            lead, unless = what[key]
            warnings.append(
                (
                    f"{at}/when/{key}",
                    f"{lead} {value!r}{did_you_mean(value, names)}: "
                    f"this rule fires only if {unless}",
                )
            )
    return warnings


def _resolve(node: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while "$ref" in node and seen < 16:
        target = str(node["$ref"]).rsplit("/", 1)[-1]
        node = schema.get("$defs", {}).get(target, {})
        seen += 1
    return node


def _wants_boolean(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "boolean" or isinstance(node.get("const"), bool)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{value!r}"


def _unquote_hint(value: Any) -> str:
    """For a number written in quotes: say to write it without them."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (write {value}, without quotes)"
    return ""


def _plural(noun: str) -> str:
    for article in ("an ", "a "):
        if noun.startswith(article):
            head, _, rest = noun[len(article) :].partition(" ")
            return f"{head}s {rest}".strip()
    return noun


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
