"""Load scenario files (PROTOCOL.md §5): safe YAML with line numbers -> checked -> Scenario.

This is the only module that imports yaml. A document is composed into yaml nodes (never
constructed into objects), then walked into plain JSON data while the position of every
value is recorded by JSON Pointer, so each schema or semantic problem names its file, line
and column. The walk accepts only plain data: mappings with string keys, lists, strings,
integers, floats, booleans and null, with YAML 1.2 scalars (`off` and `no` stay strings,
dates stay strings). Any other tag, a duplicate key, a merge key, more than MAX_NODES nodes
after alias expansion (an alias bomb), nesting deeper than MAX_DEPTH, or a file over
MAX_BYTES is refused. Everything is checked before anything is applied: a broken file never
half-loads. JSON is YAML, so the same loader reads JSON bodies.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..domain.world import WorldSpec
from ..errors import ScenarioError, ScenarioIssue
from ..schemas import SchemaRegistry, pointer
from .contracts import ContractsReader
from .spec import Problem, SpecBuilder

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
SCHEMA = "scenario"

_STR, _INT, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _NULL = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Loader(yaml.SafeLoader):
    """A safe loader resolving plain scalars by the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _tag, _pattern, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (_FLOAT, r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$", "-+0123456789."),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


@dataclass
class Marks:
    """Where each value of a document sits: JSON Pointer -> (line, column), 1-based."""

    values: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: str, keyword: str = "") -> tuple[int | None, int | None]:
        """The best position for a problem at `path` (its key for an unknown key)."""
        while True:
            if keyword == "additionalProperties" and path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if path in self.keys:
                return self.keys[path]
            if not path:
                return None, None
            path = path.rsplit("/", 1)[0]


class _Refused(Exception):
    """The document cannot be walked any further (too big, too deep)."""


class _Walker:
    """Turns yaml nodes into plain data, recording marks and problems."""

    def __init__(self) -> None:
        self.marks = Marks()
        self.issues: list[ScenarioIssue] = []
        self.nodes = 0

    def issue(self, message: str, mark: Any, path: str) -> None:
        """Record a problem at a yaml mark."""
        self.issues.append(ScenarioIssue(message, mark.line + 1, mark.column + 1, path))

    def walk(self, node: yaml.Node, parts: tuple[str | int, ...]) -> Any:
        """Plain data for one node at a path; counts every node, aliases expanded."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES} values after expanding aliases (alias bomb?)")
        if len(parts) > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        here = pointer(parts)
        mark = node.start_mark
        self.marks.values.setdefault(here, (mark.line + 1, mark.column + 1))
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            return self._mapping(node, parts)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.walk(item, (*parts, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALARS:
            return self._scalar(node, here)
        self.issue(
            f"tag {node.tag} is not allowed: a scenario holds plain data only "
            "(mappings, lists, strings, numbers, booleans, null)",
            mark,
            here,
        )
        return None

    def _mapping(self, node: yaml.MappingNode, parts: tuple[str | int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Any] = {}
        here = pointer(parts)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.issue("a mapping key must be a plain string", key_node.start_mark, here)
                continue
            key = str(key_node.value)
            at = pointer((*parts, key))
            if key == "<<" and key_node.tag == _STR and key_node.style is None:
                self.issue("merge keys (<<) are not supported", key_node.start_mark, at)
                continue
            if key in first:
                line = first[key].line + 1
                self.issue(f"duplicate key {key!r} (first at line {line})", key_node.start_mark, at)
                continue
            first[key] = key_node.start_mark
            mark = key_node.start_mark
            self.marks.keys[at] = (mark.line + 1, mark.column + 1)
            if isinstance(value_node, yaml.ScalarNode) or value_node.flow_style:
                self.marks.values.setdefault(at, _mark_of(value_node))
            else:
                self.marks.values.setdefault(at, self.marks.keys[at])
            out[key] = self.walk(value_node, (*parts, key))
        return out

    def _scalar(self, node: yaml.ScalarNode, here: str) -> Any:
        text = str(node.value)
        try:
            return _SCALARS[node.tag](text)
        except ValueError:
            self.issue(
                f"{text!r} is not a valid {node.tag.rsplit(':', 1)[-1]}", node.start_mark, here
            )
            return None


def _mark_of(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


_SCALARS: dict[str, Any] = {
    _STR: str,
    _INT: _int,
    _FLOAT: float,
    _BOOL: lambda text: text.lower() == "true",
    _NULL: lambda text: None,
}


def parse_document(text: str | bytes, filename: str) -> tuple[Any, Marks]:
    """Plain data and marks from YAML (or JSON) text; ScenarioError when it cannot be read.

    Problems with single values (a duplicate key, a refused tag) are reported together in
    one ScenarioError; use `read_document` to go on checking the rest of the document.
    """
    data, marks, issues = read_document(text, filename)
    if issues:
        raise ScenarioError(filename, issues)
    return data, marks


def read_document(text: str | bytes, filename: str) -> tuple[Any, Marks, list[ScenarioIssue]]:
    """Like parse_document, but answers value-level issues instead of raising them."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "replace"))
    if size > MAX_BYTES:
        issue = ScenarioIssue(f"the file is larger than {MAX_BYTES} bytes: refused unread")
        raise ScenarioError(filename, [issue])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ScenarioError(
                filename, [ScenarioIssue(f"not UTF-8 (invalid byte at offset {exc.start})")]
            ) from None
    walker = _Walker()
    try:
        node = _compose(text)
        data = None if node is None else walker.walk(node, ())
    except yaml.MarkedYAMLError as exc:
        raise ScenarioError(filename, [_yaml_issue(exc)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(filename, [ScenarioIssue(f"invalid YAML: {exc}")]) from None
    except (_Refused, RecursionError) as exc:
        message = str(exc) if isinstance(exc, _Refused) else "nested too deeply to read"
        raise ScenarioError(filename, [ScenarioIssue(f"refused: {message}")]) from None
    return data, walker.marks, walker.issues


def _compose(text: str) -> yaml.Node | None:
    """The document's node tree. JSON indented with tabs (which YAML refuses) is read with
    each tab as a space: in valid JSON a tab can only be whitespace between tokens."""
    try:
        return _Loader(text).get_single_node()
    except yaml.MarkedYAMLError:
        if "\t" not in text or not _is_json(text):
            raise
        return _Loader(text.replace("\t", " ")).get_single_node()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _yaml_issue(exc: yaml.MarkedYAMLError) -> ScenarioIssue:
    """A YAML syntax error at its problem mark, with its context."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    message = f"invalid YAML: {exc.problem or 'cannot parse'}"
    if exc.context:
        context_mark = exc.context_mark
        where = f" at line {context_mark.line + 1}" if context_mark else ""
        message += f" ({exc.context}{where})"
    return ScenarioIssue(message, line, column)


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: its name, description, source file and the WorldSpec it builds."""

    name: str
    description: str
    source: str
    spec: WorldSpec


@functools.lru_cache(maxsize=1)
def _default_registry() -> SchemaRegistry:
    return SchemaRegistry.load()


def fixtures_dir() -> Path:
    """The bundled scenarios: packaged data in a wheel, else the repository's `fixtures/`."""
    packaged = resources.files("vesanor_mock") / "_data" / "fixtures"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "fixtures"


def load_scenario(
    path: str | Path,
    *,
    defaults: WorldSpec | None = None,
    registry: SchemaRegistry | None = None,
) -> Scenario:
    """Load a scenario file; `contracts_dir` paths are relative to the file's folder."""
    where = Path(path)
    try:
        if where.stat().st_size > MAX_BYTES:
            issue = ScenarioIssue(f"the file is larger than {MAX_BYTES} bytes: refused unread")
            raise ScenarioError(str(path), [issue])
        text = where.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(path), [ScenarioIssue(f"cannot read: {exc.strerror}")]) from None
    return load_scenario_text(text, str(path), where.parent, defaults=defaults, registry=registry)


def load_scenario_text(
    text: str | bytes,
    filename: str = "<scenario>",
    base_dir: str | Path | None = None,
    *,
    defaults: WorldSpec | None = None,
    registry: SchemaRegistry | None = None,
) -> Scenario:
    """Load a scenario from YAML or JSON text; raise ScenarioError listing every problem."""
    registry = registry or _default_registry()
    data, marks, issues = read_document(text, filename)
    if not isinstance(data, dict):
        issues.append(ScenarioIssue("a scenario must be a mapping", *marks.locate("")))
        raise ScenarioError(filename, issues)
    issues += _schema_issues(registry, data, marks, [i.path for i in issues])
    if issues:
        raise ScenarioError(filename, _sorted(issues))
    folder = Path(base_dir) if base_dir is not None else Path(".")
    contracts = ContractsReader(folder, parse_document)
    builder = SpecBuilder(data, defaults or WorldSpec(), contracts.load)
    spec = builder.build(_stem(filename))
    problems = contracts.problems + builder.problems
    if problems:
        raise ScenarioError(filename, _sorted([_issue(p, marks) for p in problems]))
    return Scenario(spec.name or _stem(filename), spec.description, filename, spec)


def _schema_issues(
    registry: SchemaRegistry, data: Any, marks: Marks, skip: list[str]
) -> list[ScenarioIssue]:
    """Schema errors located in the file, except under values already reported."""
    return [
        ScenarioIssue(e.message, *marks.locate(e.path, e.keyword), e.path)
        for e in registry.validate(SCHEMA, data)
        if not any(e.path == p or e.path.startswith(p + "/") for p in skip)
    ]


def _sorted(issues: list[ScenarioIssue]) -> list[ScenarioIssue]:
    """Issues by file, then line and column (unlocated ones first)."""
    return sorted(issues, key=lambda i: (i.file or "", i.line or 0, i.column or 0))


def _stem(filename: str) -> str:
    stem = Path(filename).stem
    return stem if stem and not filename.startswith("<") else "scenario"


def _issue(problem: Problem, marks: Marks) -> ScenarioIssue:
    if problem.file is not None:
        return ScenarioIssue(
            problem.message, problem.line, problem.column, problem.path, file=problem.file
        )
    return ScenarioIssue(problem.message, *marks.locate(problem.path), problem.path)


class _Dumper(yaml.SafeDumper):
    """Writes plain data as block YAML that the YAML 1.2 loader above reads back unchanged."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Quote a string that would read back as another type under the 1.2 rules (`0o17`)."""
    if _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) != _STR:  # type: ignore[no-untyped-call]
        return dumper.represent_scalar(_STR, value, style="'")
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)
_RESOLVER = _Loader("")


def dump_scenario(document: dict[str, Any], header: str = "") -> str:
    """A scenario document as YAML, with `header` lines as `#` comments first."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    body = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return comments + body
