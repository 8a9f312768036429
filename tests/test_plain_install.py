"""The package as a user gets it: `pip install vesanor-mock` (no extras) in a fresh venv.

One venv per module: the wheel built from this checkout, installed with its regular
dependencies only (plus pytest, which a user's project brings), then used from outside the
checkout the way an SDK project uses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXTERNAL_PROJECT = '''
"""An SDK project's test helpers, type-checked with mypy --strict against the package."""

from vesanor_mock import MockClient, MockServer, Settings
from vesanor_mock.client import Verification


def plan_status(server: MockServer) -> str:
    client: MockClient = MockClient(server.url)
    health: dict[str, object] = client.health()
    return str(health["status"])


def run() -> bool:
    with MockServer(Settings(port=0), scenario="forced-block") as server:
        print(plan_status(server))
        result: Verification = MockClient(server.url).verify([])
        return result.ok
'''


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel of this checkout, its dependencies, and pytest."""
    where = tmp_path_factory.mktemp("plain")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(where / "dist")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wheel = next((where / "dist").glob("vesanor_mock-*.whl"))
    venv.EnvBuilder(with_pip=True).create(where / "venv")
    python = where / "venv" / "bin" / "python"
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
            "pytest",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def run_in(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VESANOR_MOCK_", "PYTHON"))}
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_an_external_project_type_checks_against_the_installed_package_with_mypy_strict(
    plain_venv: Path, tmp_path: Path
) -> None:
    (tmp_path / "sdk_helpers.py").write_text(EXTERNAL_PROJECT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(plain_venv),
            "sdk_helpers.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "missing library stubs or py.typed marker" not in done.stdout


def test_the_external_project_runs_against_the_installed_package(
    plain_venv: Path, tmp_path: Path
) -> None:
    (tmp_path / "sdk_helpers.py").write_text(EXTERNAL_PROJECT)
    done = run_in(plain_venv, tmp_path, "-c", "import sdk_helpers; print(sdk_helpers.run())")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "True"]


def test_the_in_process_fixture_works_on_a_plain_install(plain_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "test_inprocess.py").write_text(
        textwrap.dedent(
            """
            def test_without_a_socket(vesanor_mock_app):
                answer = vesanor_mock_app.client.get(
                    "/api/v1/governance/plan?agent=refund-bot&environment=production",
                    headers={"Authorization": f"Bearer {vesanor_mock_app.api_key}"},
                )
                assert answer.json()["status"] == "approved"
            """
        )
    )
    done = run_in(plain_venv, tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_installed_command_names_its_version_and_where_its_documentation_is(
    plain_venv: Path, tmp_path: Path
) -> None:
    command = plain_venv.parent / "vesanor-mock"
    version = subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0
    from vesanor_mock import __version__

    assert version.stdout.strip() == f"vesanor-mock {__version__}"
    helped = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=60)
    assert "vesanor-mock docs" in helped.stdout
    shown = subprocess.run(
        [str(command), "docs", "cli"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("# The command line")


KEEP_ALIVE_PROBE = """
import http.client, time
from vesanor_mock import MockServer, Settings

for stack in ("auto", "pure"):
    with MockServer(Settings(port=0, http_stack=stack)) as server:
        config = server._server.config
        slowest = []
        for _ in range(5):
            connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
            took = []
            for _ in range(20):
                started = time.perf_counter()
                connection.request("GET", "/_mock/health")
                assert connection.getresponse().read()
                took.append(time.perf_counter() - started)
            connection.close()
            slowest.append(max(took))
            if max(took) < 0.035:
                break
        print(stack, config.http, config.loop, min(slowest) < 0.035, slowest)
"""


def test_a_plain_install_serves_on_httptools_and_uvloop_and_keep_alive_does_not_stall(
    plain_venv: Path, tmp_path: Path
) -> None:
    done = run_in(plain_venv, tmp_path, "-c", KEEP_ALIVE_PROBE)
    assert done.returncode == 0, done.stderr
    lines = [line.split()[:4] for line in done.stdout.splitlines()]
    assert lines == [
        ["auto", "httptools", "uvloop", "True"],
        ["pure", "h11", "asyncio", "True"],
    ], done.stdout
