"""Load the JSON Schemas once, validate request bodies (fast path first) and check responses."""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import fastjsonschema
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match, relevance  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .data import data_dir
from .errors import FieldError, ValidationFailed

Schema = dict[str, Any]
FastValidator = Callable[[Any], Any]

ENDPOINTS: tuple[str, ...] = (
    "create_session",
    "get_session",
    "preflight",
    "proposals",
    "receipts",
    "labels",
    "tool_filter",
    "report_bypass",
    "kill",
    "recover",
    "get_workflow",
    "offer_handoff",
    "complete_handoff",
    "reclaim_handoff",
    "kill_workflow",
    "governance_plan",
)
"""Every endpoint name of the Runtime API, as used by schemas, rules and the journal."""

MODES: tuple[str, ...] = ("strict", "lenient", "off")
"""Request validation modes."""

MAX_ERRORS = 20
"""At most this many FieldErrors are reported for one request body."""

SUFFIX = ".schema.json"
BASE_URI = "https://vesanor-mock.dev/schemas/"
_META_KEYS = ("$schema", "$id", "$defs")
# Keywords whose meaning is the same in draft 2020-12 and in fastjsonschema's draft 7.
# fmt: off
_FAST_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "patternProperties",
    "propertyNames", "items", "enum", "const", "minLength", "maxLength", "pattern", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "minProperties",
    "maxProperties", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$defs",
    "title", "description", "$comment", "examples",
})
# fmt: on
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMAS = ("items", "additionalProperties", "propertyNames", "not", "if", "then", "else")


SHAPE_KEYWORDS = ("required", "type")
"""The only errors `off` mode reports: without them the mock could not act on a body."""


def schemas_dir() -> Path:
    """The schemas folder: packaged data in a wheel, else the repository's `schemas/`."""
    return data_dir("schemas")


def pointer(parts: Iterable[str | int]) -> str:
    """An RFC 6901 JSON Pointer (`""` is the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def component_name(name: str, fragment: str = "") -> str:
    """A flat name for a schema file or one of its `$defs`, read as a type name.

    `requests/kill` -> KillRequest, `responses/kill` -> KillResponse, `common#/$defs/Lease`
    -> Lease, `scenario#/$defs/Rule` -> ScenarioRule; the control API's files are prefixed
    with Mock: `control/clock_advance_request` -> MockClockAdvanceRequest, `control/clock`
    -> MockClockResponse, `control/findings#/$defs/Finding` -> MockFinding.
    """
    folder, _, stem = name.rpartition("/")
    camel = "".join(part.capitalize() for part in stem.split("_"))
    if folder == "control":
        root = "Mock" + camel + ("" if stem.endswith("_request") else "Response")
        prefix = "Mock"
    else:
        root = camel + {"requests": "Request", "responses": "Response"}.get(folder, "")
        prefix = "" if name == "common" else root
    if not fragment:
        return root
    parts = fragment.split("/")
    if len(parts) == 3 and parts[:2] == ["", "$defs"]:
        return prefix + parts[2]
    raise ValueError(f"unsupported $ref target {name}#{fragment}")


class SchemaRegistry:
    """Every schema of a folder, compiled once; requests and responses are checked against it."""

    def __init__(self, schemas: dict[str, Schema]) -> None:
        self._schemas = schemas
        self._names = {schema["$id"]: name for name, schema in schemas.items()}
        registry: Registry[Any] = Registry().with_resources(
            (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012))
            for s in schemas.values()
        )
        self._validators = {
            name: Draft202012Validator(schema, registry=registry)
            for name, schema in schemas.items()
        }
        self._bundles = {n: self.bundle(n) for n in schemas if n.startswith("requests/")}
        self._fast = {n: _compile_fast(b) for n, b in self._bundles.items()}

    @classmethod
    def load(cls, directory: Path | None = None, *, check: bool = False) -> SchemaRegistry:
        """Read every `*.schema.json` under `directory` (default: `schemas_dir()`).

        `check` also checks each against the draft 2020-12 metaschema (slow: the tests do it).
        """
        root = directory or schemas_dir()
        schemas: dict[str, Schema] = {}
        for path in sorted(root.rglob("*" + SUFFIX)):
            name = path.relative_to(root).as_posix()[: -len(SUFFIX)]
            schemas[name] = _read_schema(path, name, check)
        if not schemas:
            raise ValueError(f"no JSON Schemas found in {root}")
        return cls(schemas)

    def names(self) -> list[str]:
        """Every schema name, sorted (`common`, `requests/preflight`, ...)."""
        return sorted(self._schemas)

    def schema(self, name: str) -> Schema:
        """A copy of one raw schema, by name."""
        return copy.deepcopy(self._schemas[name])

    def validate(self, name: str, instance: Any) -> list[FieldError]:
        """Every error of `instance` against a schema, most relevant first (capped)."""
        return _field_errors(self._validators[name], instance)

    def validate_request(self, endpoint: str, body: Any, mode: str) -> None:
        """Raise ValidationFailed unless `body` fits the endpoint's request schema in `mode`."""
        if mode not in MODES:
            raise ValueError(f"unknown validation mode {mode!r}")
        if endpoint not in ENDPOINTS:
            raise KeyError(endpoint)
        name = "requests/" + endpoint
        if name not in self._schemas:
            return
        if not isinstance(body, dict):
            message = f"expected object, got {_json_type(body)}"
            raise ValidationFailed([FieldError("", message, "type")])
        if self._fast_ok(name, body):
            return
        if mode != "strict":
            body = _prune(self._bundles[name], body, self._bundles[name].get("$defs", {}))
            if self._fast_ok(name, body):
                return
        errors = _field_errors(self._validators[name], body)
        if mode == "off":  # only the shape the mock needs to act: required fields and types
            errors = [e for e in errors if e.keyword in SHAPE_KEYWORDS]
        if errors:
            raise ValidationFailed(errors)

    def response_errors(self, endpoint: str, status: int, body: Any) -> list[str]:
        """Human messages for a response body that breaks its schema (empty when it fits)."""
        name = f"responses/{endpoint}" if 200 <= status < 300 else "responses/error"
        errors = _field_errors(self._validators[name], body, limit=None)
        return [f"{e.path or '/'}: {e.message} [{e.keyword}]" for e in errors]

    def bundle(self, name: str) -> Schema:
        """One schema made self-contained: every `$ref` points into its own `$defs`."""
        defs = self.components([(name, "")], ref_prefix="#/$defs/")
        root = defs.pop(component_name(name))
        return {**root, "$defs": defs} if defs else root

    def components(
        self, seeds: Iterable[tuple[str, str]], *, ref_prefix: str = "#/components/schemas/"
    ) -> dict[str, Schema]:
        """`(name, fragment)` seeds and all they reference, flat by component_name."""
        out: dict[str, Schema] = {}
        owners: dict[str, tuple[str, str]] = {}
        todo = deque(seeds)
        while todo:
            name, fragment = todo.popleft()
            key = component_name(name, fragment)
            if owners.setdefault(key, (name, fragment)) != (name, fragment):
                raise ValueError(f"two schemas share the component name {key}")
            if key in out:
                continue
            node = _at_pointer(self._schemas[name], fragment)
            base = self._schemas[name]["$id"]
            stripped = {k: v for k, v in node.items() if k not in _META_KEYS}
            out[key] = self._rewrite(stripped, base, ref_prefix, todo)
        return out

    def _rewrite(self, node: Any, base: str, prefix: str, found: deque[tuple[str, str]]) -> Any:
        """A copy of `node` with every `$ref` renamed to `prefix + component_name`."""
        if isinstance(node, list):
            return [self._rewrite(item, base, prefix, found) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: self._rewrite(v, base, prefix, found) for k, v in node.items()}
        if isinstance(node.get("$ref"), str):
            url, fragment = urldefrag(urljoin(base, node["$ref"]))
            target = (self._names[url], fragment)
            found.append(target)
            out["$ref"] = prefix + component_name(*target)
        return out

    def _fast_ok(self, name: str, body: Any) -> bool:
        """True when the fast validator accepts `body`; False when invalid or unavailable."""
        fast = self._fast.get(name)
        if fast is None:
            return False
        try:
            fast(body)
        except Exception:  # any failure means: ask jsonschema, the authority
            return False
        return True


def _read_schema(path: Path, name: str, check: bool) -> Schema:
    """Parse (and check) one schema file; give it an `$id` from its name when it has none."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        if check:
            Draft202012Validator.check_schema(schema)
        if not isinstance(schema, dict):
            raise TypeError("the top level must be an object")
    except Exception as exc:
        raise ValueError(f"{path.name}: not a valid JSON Schema: {exc}") from exc
    schema.setdefault("$id", f"{BASE_URI}{name}{SUFFIX}")
    return dict(schema)


def _at_pointer(document: Any, fragment: str) -> Any:
    """The node a JSON Pointer fragment names."""
    node = document
    for raw in fragment.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _compile_fast(bundle: Schema) -> FastValidator | None:
    """A fastjsonschema validator with the same meaning, or None when it cannot give one."""
    variant = _draft7_variant(bundle)
    if variant is None:
        return None
    variant["$schema"] = "http://json-schema.org/draft-07/schema#"
    try:
        return fastjsonschema.compile(variant, use_default=False, use_formats=False)
    except Exception:  # a schema fastjsonschema cannot compile falls back to jsonschema
        return None


def _draft7_variant(node: Any) -> Any:
    """A draft 7 copy (`$ref` beside other keywords moved into allOf); None if not portable."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUBSCHEMA_MAPS:
            value = {k: _draft7_variant(v) for k, v in value.items()}
            ok = all(v is not None for v in value.values())
        elif key in _SUBSCHEMA_LISTS:
            value = [_draft7_variant(v) for v in value]
            ok = all(v is not None for v in value)
        elif key in _SUBSCHEMAS:
            value = _draft7_variant(value)
            ok = value is not None
        else:
            ok = key in _FAST_KEYWORDS or key in ("$schema", "$id")
        if not ok:
            return None
        out[key] = value
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _prune(schema: Any, instance: Any, defs: dict[str, Any]) -> Any:
    """`instance` without the properties its (bundled) schema closes out, at every depth."""
    if not isinstance(schema, dict):
        return instance
    if isinstance(schema.get("$ref"), str):
        instance = _prune(defs[schema["$ref"].rsplit("/", 1)[-1]], instance, defs)
    for sub in schema.get("allOf", ()):
        instance = _prune(sub, instance, defs)
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], item, defs) for item in instance]
    if not isinstance(instance, dict):
        return instance
    props: dict[str, Any] = schema.get("properties", {})
    closed = schema.get("additionalProperties") is False
    return {
        key: _prune(props[key], value, defs) if key in props else value
        for key, value in instance.items()
        if key in props or not closed or _pattern_allows(schema, key)
    }


def _pattern_allows(schema: Schema, key: str) -> bool:
    """True when a patternProperties pattern of `schema` matches `key`."""
    return any(re.search(p, key) for p in schema.get("patternProperties", {}))


def _field_errors(
    validator: Any, instance: Any, limit: int | None = MAX_ERRORS
) -> list[FieldError]:
    """jsonschema's errors as FieldErrors, most relevant first."""
    ordered = sorted(validator.iter_errors(instance), key=relevance, reverse=True)
    out: list[FieldError] = []
    for error in ordered:
        out.extend(_explain(error))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def _explain(error: Any) -> Iterator[FieldError]:
    """One jsonschema error as FieldErrors pointing at the offending (or missing) member."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        error = best_match([error])  # descends into the branch closest to the instance
    path = list(error.absolute_path)
    if error.validator == "required":
        name = _missing_property(error)
        yield FieldError(pointer([*path, name]), f"{name!r} is a required property", "required")
    elif error.validator == "additionalProperties" and error.validator_value is False:
        for name in _unknown_properties(error.schema, error.instance):
            message = f"unknown property {name!r} is not allowed"
            yield FieldError(pointer([*path, name]), message, "additionalProperties")
    else:
        yield FieldError(pointer(path), _message(error), str(error.validator))


def _missing_property(error: Any) -> str:
    """The property a `required` error is about."""
    missing = [p for p in error.validator_value if p not in error.instance]
    for name in missing:
        if error.message == f"{name!r} is a required property":
            return str(name)
    return str(missing[0]) if missing else ""


def _unknown_properties(schema: Schema, instance: dict[str, Any]) -> list[str]:
    """The members of `instance` that `schema` does not declare."""
    known = schema.get("properties", {})
    return [k for k in instance if k not in known and not _pattern_allows(schema, k)]


def _json_type(value: Any) -> str:
    """The JSON type name of a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    kinds = ((int, "integer"), (float, "number"), (str, "string"), (list, "array"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "object")


def _count(n: int, noun: str) -> str:
    """`1 item`, `3 items`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _exactly_one(schema: Schema) -> str:
    """The message for the `contract`-style "exactly one of" objects."""
    names = ", ".join(repr(k) for k in schema.get("properties", {}))
    return f"expected exactly one of {names}"


_MESSAGES: dict[str, Callable[[Any, Any, Schema], str]] = {
    "type": lambda v, i, s: (
        f"expected {v if isinstance(v, str) else ' or '.join(v)}, got {_json_type(i)}"
    ),
    "enum": lambda v, i, s: "expected one of " + ", ".join(json.dumps(x) for x in v),
    "const": lambda v, i, s: f"expected {json.dumps(v)}",
    "pattern": lambda v, i, s: f"expected a string matching {v}",
    "minLength": lambda v, i, s: f"expected at least {_count(v, 'character')}, got {len(i)}",
    "maxLength": lambda v, i, s: f"expected at most {_count(v, 'character')}, got {len(i)}",
    "minimum": lambda v, i, s: f"expected a number >= {v}, got {i}",
    "maximum": lambda v, i, s: f"expected a number <= {v}, got {i}",
    "exclusiveMinimum": lambda v, i, s: f"expected a number > {v}, got {i}",
    "exclusiveMaximum": lambda v, i, s: f"expected a number < {v}, got {i}",
    "minItems": lambda v, i, s: f"expected at least {_count(v, 'item')}, got {len(i)}",
    "maxItems": lambda v, i, s: f"expected at most {_count(v, 'item')}, got {len(i)}",
}


def _message(error: Any) -> str:
    """A sentence saying what was expected at the error's location."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator in ("minProperties", "maxProperties") and schema.get("maxProperties") == 1:
        return _exactly_one(schema)
    explain = _MESSAGES.get(str(error.validator))
    return explain(error.validator_value, error.instance, schema) if explain else error.message
