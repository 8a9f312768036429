"""Read a contracts folder (PROTOCOL.md §4.1, DOMAIN.md) for a scenario, locating every problem.

`session.yaml` plus one `<tool>.yaml` (or `.yml`) per tool, named after the tool. A
`workflow.yaml` in the folder is compiled too: each role's `session_contract`, when it is a
path, names a contracts folder relative to the workflow file, compiled in its place
(`loading.compile_workflow_folder` answers the resulting `compiled_workflow`). The
documents are parsed by the scenario loader's parser (given in, so yaml stays in
loading.py), joined by `compile_contracts_dir` and compiled; a compile error at
`/tools/<name>/...` is reported in `<name>.yaml`, any other in `session.yaml`, each with its
own line and column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..domain.contracts import compile_contracts_dir, compile_session
from ..domain.jsonpath import ErrorLog
from ..domain.published import check_keys
from ..domain.workflows import compile_workflow
from ..errors import CompileError, ScenarioError
from .reading import read_bounded
from .spec import Artifact, Problem

CONTRACT_SKIP = frozenset({"session", "workflow"})
WORKFLOW_FIELDS = ("schema_version", "workflow", "roles", "handoffs", "limits")
ROLE_FIELDS = ("name", "session_contract")
HANDOFF_FIELDS = ("from", "to")
LIMIT_FIELDS = ("max_cost_usd", "max_sessions")


class Located(Protocol):
    """Marks of a parsed document: where a JSON Pointer's value sits."""

    def locate(self, path: str, keyword: str = "") -> tuple[int | None, int | None]:
        """(line, column) of the value at `path`."""
        ...


Parser = Callable[[bytes, str], tuple[Any, Located]]


class ContractsReader:
    """Reads and compiles contracts folders, locating problems in the folder's files."""

    def __init__(self, base: Path, parse: Parser, *, workflows: bool = True) -> None:
        self.base = base
        self.parse = parse
        self.workflows = workflows  # compile a workflow.yaml found in a folder
        self.problems: list[Problem] = []
        self.folders: list[Path] = []

    def load(self, folder: str, at: str, compile_it: bool) -> Artifact | None:
        """The folder's compiled_session (and compiled form), or None after reporting."""
        root = self.base / folder
        self.folders.append(root)
        session_file = root / "session.yaml"
        if not session_file.is_file():
            self.problems.append(Problem(at, f"contracts_dir {folder!r}: no session.yaml in it"))
            return None
        docs = self._read_all(root, session_file)
        if docs is None:
            return None
        session_doc, session_marks = docs.pop("session")
        tool_docs = {name: doc for name, (doc, _) in docs.items()}
        artifact: Artifact | None = None
        try:
            raw = compile_contracts_dir(session_doc, tool_docs)
            artifact = raw, compile_session(raw) if compile_it else None
        except CompileError as error:
            for item in error.errors:
                self._locate(item.path, item.message, root, session_marks, docs)
        if self.workflows and (root / "workflow.yaml").is_file():
            self.workflow(root)
        return artifact

    def workflow(self, root: Path) -> dict[str, Any] | None:
        """`root/workflow.yaml` as a compiled_workflow, role contract paths resolved and
        compiled; None after reporting its problems (each in its own file)."""
        path = root / "workflow.yaml"
        try:
            doc, marks = self.parse(path.read_bytes(), str(path))
        except ScenarioError as error:
            for i in error.issues:
                self.problems.append(Problem(i.path, i.message, str(path), i.line, i.column))
            return None
        except OSError as exc:
            self.problems.append(Problem("", f"cannot read: {exc.strerror}", str(path)))
            return None
        mark = len(self.problems)
        self._check_workflow_keys(doc, marks, path)
        roles = doc.get("roles") if isinstance(doc, dict) else None
        for index, role in enumerate(roles if isinstance(roles, list) else []):
            target = role.get("session_contract") if isinstance(role, dict) else None
            if isinstance(target, str):
                at = f"/roles/{index}/session_contract"
                role["session_contract"] = self._role_folder(root, target, at, marks, path)
        if len(self.problems) > mark:
            return None
        try:
            compile_workflow(doc)
        except CompileError as error:
            for item in error.errors:
                line, column = marks.locate(item.path)
                message = f"does not compile: {item.message}"
                self.problems.append(Problem(item.path, message, str(path), line, column))
            return None
        return dict(doc)

    def _check_workflow_keys(self, doc: Any, marks: Located, path: Path) -> None:
        """workflow.yaml keys against the published fields, each typo with a did-you-mean."""
        found = _keys(doc, "", WORKFLOW_FIELDS, "workflow.yaml")
        if isinstance(doc, dict):
            for part, known, what in (
                ("roles", ROLE_FIELDS, "a role"),
                ("handoffs", HANDOFF_FIELDS, "a handoff"),
            ):
                items = doc.get(part)
                for index, item in enumerate(items if isinstance(items, list) else []):
                    found += _keys(item, f"/{part}/{index}", known, what)
            found += _keys(doc.get("limits"), "/limits", LIMIT_FIELDS, "limits")
        for at, message in found:
            line, column = marks.locate(at, "additionalProperties")
            self.problems.append(Problem(at, message, str(path), line, column))

    def _role_folder(
        self, root: Path, target: str, at: str, marks: Located, path: Path
    ) -> dict[str, Any] | None:
        """A role's contracts folder (relative to workflow.yaml) compiled, or None."""
        folder = root / target
        if not (folder / "session.yaml").is_file():
            line, column = marks.locate(at)
            message = f"session_contract {target!r}: no contracts folder (session.yaml) there"
            self.problems.append(Problem(at, message, str(path), line, column))
            return None
        found = ContractsReader(folder, self.parse, workflows=False)
        artifact = found.load(".", at, compile_it=True)
        self.problems.extend(p for p in found.problems if p not in self.problems)
        self.folders.extend(f for f in found.folders if f not in self.folders)
        return artifact[0] if artifact is not None else None

    def _read_all(self, root: Path, session_file: Path) -> dict[str, tuple[Any, Located]] | None:
        tools = sorted(
            p
            for p in root.iterdir()
            if p.suffix in (".yaml", ".yml") and p.is_file() and p.stem not in CONTRACT_SKIP
        )
        files = [session_file, *tools]
        docs: dict[str, tuple[Any, Located]] = {}
        for path in files:
            try:
                docs[path.stem] = self.parse(read_bounded(path), str(path))
            except ScenarioError as error:
                for i in error.issues:
                    self.problems.append(Problem(i.path, i.message, str(path), i.line, i.column))
            except OSError as exc:
                self.problems.append(Problem("", f"cannot read: {exc.strerror}", str(path)))
        return None if len(docs) < len(files) else docs

    def _locate(
        self,
        path: str,
        message: str,
        root: Path,
        session_marks: Located,
        tools: dict[str, tuple[Any, Located]],
    ) -> None:
        """A compile error at a compiled_session pointer, placed in the file it came from."""
        parts = path.split("/")
        if len(parts) >= 3 and parts[1] == "tools":
            name = parts[2].replace("~1", "/").replace("~0", "~")
            if name in tools:
                inner = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
                line, column = tools[name][1].locate(inner)
                where = _tool_file(root, name)
                self.problems.append(
                    Problem(inner, f"does not compile: {message}", where, line, column)
                )
                return
        line, column = session_marks.locate(path)
        where = str(root / "session.yaml")
        self.problems.append(Problem(path, f"does not compile: {message}", where, line, column))


def _keys(value: Any, at: str, known: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    """(pointer, message) for each key of a workflow.yaml part that is not published."""
    if not isinstance(value, dict):
        return []
    log = ErrorLog()
    check_keys(value, at, log, known, what)
    return [(e.path, e.message) for e in log.items]


def _tool_file(root: Path, name: str) -> str:
    """The file a tool's contract was read from."""
    for suffix in (".yaml", ".yml"):
        if (root / (name + suffix)).is_file():
            return str(root / (name + suffix))
    return str(root / (name + ".yaml"))
