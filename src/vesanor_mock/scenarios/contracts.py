"""Read a contracts folder (PROTOCOL.md §4.1, DOMAIN.md) for a scenario, locating every problem.

`session.yaml` plus one `<tool>.yaml` (or `.yml`) per tool, named after the tool;
`workflow.yaml` is skipped. The documents are parsed by the scenario loader's parser
(given in, so yaml stays in loading.py), joined by `compile_contracts_dir` and compiled;
a compile error at `/tools/<name>/...` is reported in `<name>.yaml`, any other in
`session.yaml`, each with its own line and column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..domain.contracts import compile_contracts_dir, compile_session
from ..errors import CompileError, ScenarioError
from .reading import read_bounded
from .spec import Artifact, Problem

CONTRACT_SKIP = frozenset({"session", "workflow"})


class Located(Protocol):
    """Marks of a parsed document: where a JSON Pointer's value sits."""

    def locate(self, path: str, keyword: str = "") -> tuple[int | None, int | None]:
        """(line, column) of the value at `path`."""
        ...


Parser = Callable[[bytes, str], tuple[Any, Located]]


class ContractsReader:
    """Reads and compiles contracts folders, locating problems in the folder's files."""

    def __init__(self, base: Path, parse: Parser) -> None:
        self.base = base
        self.parse = parse
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
        try:
            raw = compile_contracts_dir(session_doc, tool_docs)
            return raw, compile_session(raw) if compile_it else None
        except CompileError as error:
            for item in error.errors:
                self._locate(item.path, item.message, root, session_marks, docs)
            return None

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


def _tool_file(root: Path, name: str) -> str:
    """The file a tool's contract was read from."""
    for suffix in (".yaml", ".yml"):
        if (root / (name + suffix)).is_file():
            return str(root / (name + suffix))
    return str(root / (name + ".yaml"))
