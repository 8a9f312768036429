"""Layering: each third-party package has one owner, and the domain imports no framework."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vesanor_mock"
FRAMEWORKS = {"starlette", "uvicorn", "yaml", "jsonschema", "fastjsonschema", "requests", "pytest"}


def imported(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_scenario_loader_imports_yaml() -> None:
    owners = sorted(
        p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "yaml" in imported(p)
    )
    assert owners == ["scenarios/loading.py"]


def test_the_domain_imports_no_framework() -> None:
    for path in (PACKAGE / "domain").glob("*.py"):
        assert imported(path) & FRAMEWORKS == set(), path.name


OWNERS = {
    "uvicorn": {"server.py"},
    "pytest": {"pytest_plugin.py"},
    "requests": {"client.py"},
    "jsonschema": {"schemas.py"},
    "fastjsonschema": {"schemas.py"},
    "yaml": {"scenarios/loading.py"},
    "re2": {"domain/regex.py"},
}


def test_each_third_party_package_has_one_owner_and_starlette_stays_in_http() -> None:
    modules = {p.relative_to(PACKAGE).as_posix(): imported(p) for p in PACKAGE.rglob("*.py")}
    for package, owners in OWNERS.items():
        users = {name for name, names in modules.items() if package in names}
        assert users == owners, package
    starlette = {name for name, names in modules.items() if "starlette" in names}
    assert starlette and all(name.startswith("http/") for name in starlette)
