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
from pathlib import Path
from typing import Any

import yaml

from ..data import data_dir
from ..domain.world import WorldSpec
from ..errors import ScenarioError, ScenarioIssue
from ..schemas import SchemaRegistry, pointer
from .compose import Origin, Part, merge
from .contracts import ContractsReader
from .hints import did_you_mean, name_warnings, schema_message
from .reading import MAX_BYTES, read_bounded
from .spec import Problem, SpecBuilder

MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_EXTENDS = 16
SUFFIXES = (".yaml", ".yml", ".json")
STAND_IN = {"delay_ms": 1}
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
    """A loaded scenario: its name, description, source file and the WorldSpec it builds.

    `warnings` are what loads but probably is not meant (a rule naming a tool nothing
    defines); `files` every file and folder it was read from (its `extends` bases, its
    contracts folders), which hot reload watches.
    """

    name: str
    description: str
    source: str
    spec: WorldSpec
    warnings: tuple[ScenarioIssue, ...] = ()
    files: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1)
def _default_registry() -> SchemaRegistry:
    return SchemaRegistry.load()


def fixtures_dir() -> Path:
    """The bundled scenarios: packaged data in a wheel, else the repository's `fixtures/`."""
    return data_dir("fixtures")


def bundled_names() -> list[str]:
    """The names of the bundled scenarios, sorted (`default`, `forced-block`, ...)."""
    return sorted(p.stem for p in fixtures_dir().glob("*.yaml") if p.is_file())


def load_scenario(
    path: str | Path,
    *,
    defaults: WorldSpec | None = None,
    registry: SchemaRegistry | None = None,
) -> Scenario:
    """Load a scenario file; `contracts_dir` and `extends` paths are relative to its folder."""
    text = _read_file(Path(path), str(path))
    folder = Path(path).parent
    return load_scenario_text(text, str(path), folder, defaults=defaults, registry=registry)


def _read_file(where: Path, filename: str) -> bytes:
    return read_bounded(where, filename)


def load_scenario_text(
    text: str | bytes,
    filename: str = "<scenario>",
    base_dir: str | Path | None = None,
    *,
    defaults: WorldSpec | None = None,
    registry: SchemaRegistry | None = None,
) -> Scenario:
    """Load a scenario from YAML or JSON text; raise ScenarioError listing every problem.

    Every problem of the file (and of the files it extends) is found in one pass: values
    the schema refuses are set aside and the rest is still checked for meaning.
    """
    registry = registry or _default_registry()
    folder = Path(base_dir) if base_dir is not None else Path(".")
    chain = _Chain(registry)
    chain.read(text, filename, folder, ())
    if chain.fatal:
        raise ScenarioError(filename, _sorted(chain.issues))
    merged, origin = merge(chain.parts)
    contracts = ContractsReader(folder, parse_document)
    builder = SpecBuilder(merged, defaults or WorldSpec(), contracts.load)
    spec = builder.build(_stem(filename))
    issues = chain.issues + [chain.locate(p, origin) for p in contracts.problems + builder.problems]
    if issues:
        raise ScenarioError(filename, _sorted(issues))
    rules = [(f"/rules/{i}", rule) for i, rule in enumerate(merged.get("rules", []))]
    warnings = [
        chain.locate(Problem(at, message), origin) for at, message in name_warnings(spec, rules)
    ]
    files = [part.filename for part in chain.parts if not part.filename.startswith("<")]
    files += [str(folder) for folder in contracts.folders]
    return Scenario(
        spec.name or _stem(filename),
        spec.description,
        filename,
        spec,
        tuple(_sorted(warnings)),
        tuple(dict.fromkeys(files)),
    )


class _Chain:
    """Reads a scenario and the bases it extends, checking each; base first in `parts`."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self.schema = registry.schema(SCHEMA)
        self.parts: list[Part] = []
        self.marks: list[Marks] = []
        self.issues: list[ScenarioIssue] = []
        self.fatal = False

    def read(self, text: str | bytes, filename: str, folder: Path, seen: tuple[str, ...]) -> None:
        """Read one file (its bases first); a file that cannot be read at all is fatal."""
        try:
            data, marks, issues = read_document(text, filename)
        except ScenarioError as unreadable:
            self.issues += [_in_file(i, unreadable.filename, filename) for i in unreadable.issues]
            self.fatal = True
            return
        self.issues += [_in_file(i, filename, seen[0] if seen else filename) for i in issues]
        if not isinstance(data, dict):
            issue = ScenarioIssue("a scenario must be a mapping", *marks.locate(""))
            self.issues.append(_in_file(issue, filename, seen[0] if seen else filename))
            self.fatal = True
            return
        errors = self.registry.validate(SCHEMA, data)
        skip = [i.path for i in issues]
        for error in errors:
            if any(error.path == p or error.path.startswith(p + "/") for p in skip):
                continue
            message = schema_message(self.schema, data, error.path, error.keyword, error.message)
            issue = ScenarioIssue(message, *marks.locate(error.path, error.keyword), error.path)
            self.issues.append(_in_file(issue, filename, seen[0] if seen else filename))
        if errors or skip:
            data = _without(data, [e.path for e in errors] + skip)
            data = _set_aside(data, self._still_invalid(data))
        base = data.get("extends")
        if isinstance(base, str):
            self._extend(base, filename, folder, marks, (*seen, filename))
        self.parts.append(Part(filename, folder, data, marks.locate))
        self.marks.append(marks)

    def _still_invalid(self, data: dict[str, Any]) -> list[str]:
        """What is still invalid once the refused keys are gone; a rule whose only effects
        were refused gets a harmless stand-in so its `when` is still checked (the file
        fails anyway: this spec is never served)."""
        paths = []
        for error in self.registry.validate(SCHEMA, data):
            parts = error.path.split("/")
            if (
                error.keyword == "minProperties"
                and parts[1:2] == ["rules"]
                and parts[3:] == ["then"]
            ):
                data["rules"] = list(data["rules"])
                data["rules"][int(parts[2])] = {**data["rules"][int(parts[2])], "then": STAND_IN}
                continue
            paths.append(error.path)
        return paths

    def _extend(
        self, name: str, filename: str, folder: Path, marks: Marks, seen: tuple[str, ...]
    ) -> None:
        where = _find_base(name, folder)
        line, column = marks.locate("/extends")
        if where is None:
            hint = did_you_mean(name, bundled_names())
            message = (
                f"extends {name!r}: no such file next to this one and no bundled scenario of "
                f"that name{hint} (bundled: {', '.join(bundled_names())})"
            )
            self._fail(message, line, column, filename, seen[0])
            return
        shown = [Path(s).name if not s.startswith("<") else s for s in seen]
        resolved = [str(Path(s).resolve()) for s in seen if not s.startswith("<")]
        if str(where.resolve()) in resolved:
            cycle = " -> ".join([*shown, where.name])
            message = f"extends cycle: {cycle}: a scenario cannot extend itself, even indirectly"
            self._fail(message, line, column, filename, seen[0])
            return
        if len(seen) >= MAX_EXTENDS:
            message = f"extends: a chain longer than {MAX_EXTENDS} files"
            self._fail(message, line, column, filename, seen[0])
            return
        try:
            text = _read_file(where, str(where))
        except ScenarioError as error:
            self.issues += [_in_file(i, str(where), seen[0]) for i in error.issues]
            self.fatal = True
            return
        self.read(text, str(where), where.parent, seen)

    def _fail(self, message: str, line: int | None, column: int | None, at: str, main: str) -> None:
        """An `extends` that cannot be followed: nothing more can be checked."""
        self.issues.append(_in_file(ScenarioIssue(message, line, column, "/extends"), at, main))
        self.fatal = True

    def locate(self, problem: Problem, origin: Origin) -> ScenarioIssue:
        """A problem of the merged document, in the file, line and column that wrote it."""
        if problem.file is not None:
            return ScenarioIssue(
                problem.message, problem.line, problem.column, problem.path, file=problem.file
            )
        index, path = origin.source(problem.path)
        part = self.parts[index]
        issue = ScenarioIssue(problem.message, *self.marks[index].locate(path), path)
        return _in_file(issue, part.filename, self.parts[-1].filename)


def _in_file(issue: ScenarioIssue, filename: str, main: str) -> ScenarioIssue:
    """The issue, naming its file when it is not the scenario being loaded."""
    if filename != main and issue.file is None:
        issue.file = filename
    return issue


def _find_base(name: str, folder: Path) -> Path | None:
    """`extends`: a path relative to the extending file, else a bundled scenario's name."""
    given = Path(name)
    searched = [folder] if given.is_absolute() else [folder, fixtures_dir()]
    for place in searched:
        for candidate in (place / given, *(place / f"{given}{s}" for s in SUFFIXES)):
            if candidate.is_file():
                return candidate
    return None


def _without(data: Any, paths: list[str]) -> Any:
    """The document without the refused keys themselves (their mapping stays).

    What is still invalid after that (a required key now missing, a list item) is set aside
    whole by `_set_aside`; everything else is checked for meaning in the same pass.
    """
    for path in paths:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        if parts:
            data = _pop(data, parts)
    return data


def _pop(data: Any, parts: list[str]) -> Any:
    """A copy of `data` without the key at `parts` (unchanged when not a mapping's key)."""
    head, rest = parts[0], parts[1:]
    if isinstance(data, dict):
        if head not in data:
            return data
        if not rest:
            return {key: value for key, value in data.items() if key != head}
        return {**data, head: _pop(data[head], rest)}
    if isinstance(data, list) and head.isdigit() and int(head) < len(data) and rest:
        items = list(data)
        items[int(head)] = _pop(items[int(head)], rest)
        return items
    return data


def _set_aside(data: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """The document without the values the schema refused (list items become None).

    What stays is checked for meaning in the same pass, so one run reports every problem.
    """
    out = dict(data)
    for path in paths:
        parts = path.split("/")[1:] if path else []
        if not parts:
            continue
        key = parts[0].replace("~1", "/").replace("~0", "~")
        value = out.get(key)
        if len(parts) >= 2 and isinstance(value, list) and parts[1].isdigit():
            items = list(value)
            if int(parts[1]) < len(items):
                items[int(parts[1])] = None
            out[key] = items
        elif len(parts) >= 2 and isinstance(value, dict):
            inner = dict(value)
            inner.pop(parts[1].replace("~1", "/").replace("~0", "~"), None)
            out[key] = inner
        else:
            out.pop(key, None)
    if "tenants" in out and not [t for t in out["tenants"] if t is not None]:
        out.pop("tenants")
    return out


def _sorted(issues: list[ScenarioIssue]) -> list[ScenarioIssue]:
    """Issues by file, then line and column (unlocated ones first)."""
    return sorted(issues, key=lambda i: (i.file or "", i.line or 0, i.column or 0))


def _stem(filename: str) -> str:
    stem = Path(filename).stem
    return stem if stem and not filename.startswith("<") else "scenario"


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


def compile_workflow_folder(folder: str | Path) -> dict[str, Any]:
    """The compiled_workflow of `folder/workflow.yaml`, to send in a root create request.

    Each role's `session_contract` path names a contracts folder relative to the workflow
    file; it is compiled and put in its place. Raise ScenarioError with every problem,
    each at its own file, line and column.
    """
    root = Path(folder)
    path = root / "workflow.yaml"
    if not path.is_file():
        raise ScenarioError(str(root), [ScenarioIssue("no workflow.yaml in this folder")])
    reader = ContractsReader(root, parse_document)
    compiled = reader.workflow(root)
    if compiled is None:
        issues = [
            ScenarioIssue(p.message, p.line, p.column, p.path, p.file) for p in reader.problems
        ]
        raise ScenarioError(str(path), _sorted(issues))
    return compiled
