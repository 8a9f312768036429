"""Packaging: the wheel carries the schemas and fixtures and finds them when installed."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return next(out.glob("vesanor_mock-*.whl"))


def test_the_wheel_ships_every_schema_fixture_and_doc_its_licence_and_type_marker(
    wheel: Path,
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "vesanor_mock/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    for page in (ROOT / "docs").glob("*.md"):
        assert f"vesanor_mock/_data/docs/{page.name}" in names
    for schema in (ROOT / "schemas").rglob("*.json"):
        assert f"vesanor_mock/_data/schemas/{schema.relative_to(ROOT / 'schemas')}" in names
    for fixture in (ROOT / "fixtures").rglob("*.yaml"):
        assert f"vesanor_mock/_data/fixtures/{fixture.relative_to(ROOT / 'fixtures')}" in names


def run_installed(wheel: Path, tmp_path: Path, probe: str) -> tuple[Path, list[str]]:
    """Unpack the wheel as a site folder and run `probe` against it; answer the folder and
    the words the probe printed."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    return site, result.stdout.split()


def test_an_installed_wheel_finds_its_schemas_inside_the_package(
    wheel: Path, tmp_path: Path
) -> None:
    site, (where, count) = run_installed(
        wheel,
        tmp_path,
        "from vesanor_mock.schemas import SchemaRegistry, schemas_dir;"
        "print(schemas_dir()); print(len(SchemaRegistry.load().names()))",
    )
    assert Path(where).is_relative_to(site)
    assert where.endswith("_data/schemas") or where.endswith("_data\\schemas")
    assert int(count) > 20


def test_an_installed_wheel_finds_and_loads_its_bundled_scenarios(
    wheel: Path, tmp_path: Path
) -> None:
    site, (where, name) = run_installed(
        wheel,
        tmp_path,
        "from vesanor_mock.scenarios import fixtures_dir, load_scenario;"
        "print(fixtures_dir()); print(load_scenario(fixtures_dir() / 'default.yaml').name)",
    )
    assert Path(where).is_relative_to(site)
    assert name == "default"


def test_the_changelog_opens_with_a_dated_entry_for_the_current_version() -> None:
    from vesanor_mock import __version__

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d\d-\d\d)$", text, re.MULTILINE)
    assert releases[0][0] == __version__
    entry = text.split(f"## [{__version__}]", 1)[1].split("\n## [", 1)[0]
    assert all(f"### {kind}" in entry for kind in ("Added", "Changed", "Fixed"))
    assert f"[{__version__}]: " in text
