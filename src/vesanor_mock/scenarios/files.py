"""Scenario files by name (bundled or in a folder), and expectation files for `verify`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ScenarioError, ScenarioIssue
from ..schemas import SchemaRegistry
from .hints import did_you_mean
from .loading import bundled_names, fixtures_dir, parse_document
from .reading import read_bounded
from .spec import build_expectations

SUFFIXES = (".yaml", ".yml", ".json")


def find_scenario(name_or_path: str | Path, folders: Sequence[str | Path] = ()) -> Path:
    """An existing file as given, else `<name>[.yaml|.yml|.json]` in `folders`, then bundled.

    `find_scenario("forced-block")` is the bundled fixture; a folder given first wins.
    """
    given = Path(name_or_path)
    if given.exists() and not given.is_dir():  # a FIFO or device too: the reader refuses it
        return given
    searched = [Path(folder) for folder in folders] + [fixtures_dir()]
    if not given.is_absolute():
        for folder in searched:
            for candidate in (folder / given, *(folder / f"{given}{s}" for s in SUFFIXES)):
                if candidate.is_file():
                    return candidate
    where = ", ".join(str(folder) for folder in searched)
    names = bundled_names()
    hint = did_you_mean(str(name_or_path), names)
    issue = ScenarioIssue(
        f"no such file, and no scenario of that name in {where}{hint}; "
        f"bundled scenarios: {', '.join(names)} (vesanor-mock scenarios describes them)"
    )
    raise ScenarioError(str(name_or_path), [issue])


def bundled_scenarios() -> list[dict[str, str]]:
    """The bundled scenarios: `{"name", "description", "source"}` each, sorted by name.

    `source` is the file's path; a file that does not read (it would be a packaging bug)
    is listed with its problem as its description rather than hidden.
    """
    found: list[dict[str, str]] = []
    for name in bundled_names():
        path = fixtures_dir() / f"{name}.yaml"
        try:
            data, _ = parse_document(read_bounded(path), str(path))
            description = str(data.get("description", "")) if isinstance(data, dict) else ""
        except (OSError, ScenarioError) as exc:
            description = f"(does not read: {exc})"
        found.append({"name": name, "description": description.strip(), "source": str(path)})
    return found


def find_bundled(name: str) -> Path:
    """A bundled scenario by name only (the control API: never a path on the server)."""
    names = bundled_names()
    if name in names:
        return fixtures_dir() / f"{name}.yaml"
    issue = ScenarioIssue(
        f"no bundled scenario named {name!r}{did_you_mean(name, names)}; "
        f"bundled: {', '.join(names)}"
    )
    raise ScenarioError(name, [issue])


def read_expectations(
    path: str | Path, registry: SchemaRegistry | None = None
) -> list[dict[str, Any]]:
    """The expectations in a file: a list of them, or a mapping with `expect` (a scenario).

    Every problem is reported like a scenario's, with its line and column.
    """
    filename = str(path)
    text = read_bounded(path, filename)
    data, marks = parse_document(text, filename)
    if isinstance(data, list):
        items, prefix = data, ""
    elif isinstance(data, dict) and isinstance(data.get("expect"), list):
        items, prefix = data["expect"], "/expect"
    else:
        message = "expected a list of expectations, or a mapping with an `expect` list"
        raise ScenarioError(filename, [ScenarioIssue(message, *marks.locate(""))])
    registry = registry or SchemaRegistry.load()
    found = [
        (prefix + error.path.removeprefix("/expect"), error.message, error.keyword)
        for error in registry.validate("scenario", {"expect": items})
    ]
    if not found:
        found = [(prefix + p, m, "") for p, m in build_expectations(items)[1]]
    if found:
        issues = [ScenarioIssue(m, *marks.locate(p, k), p) for p, m, k in found]
        raise ScenarioError(filename, issues)
    return items
