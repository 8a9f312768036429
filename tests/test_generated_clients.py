"""Clients generated from /openapi.json by real generators run the governed cycle.

The README's two commands generate a Python client (openapi-python-client) and TypeScript
types (openapi-typescript), once per session, from a live mock. Each side type-checks a
governed-cycle program (tests/generators/cycle.py under `mypy --strict`, cycle.mts under
`tsc --strict` with openapi-fetch; no casts) and runs it against a fresh mock: create,
preflight, proposal, receipt, load, and a 409 read as the error envelope. `make generators`
installs the pinned generators into tests/generators/ (ignored by git); where they are
missing, these tests skip and say how to get them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vesanor_mock.config import Settings
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.server import MockServer

from .test_readme import shell_block

GENERATORS = Path(__file__).resolve().parent / "generators"
TOOL_VENV = GENERATORS / ".venv" / "bin"
NODE_BIN = GENERATORS / "node_modules" / ".bin"
HOW = "run `make generators` (it installs them into tests/generators/)"
CONTROL_TOKEN = "ctl-generated-clients"
API_KEY = "vsk_test_default"
TIMEOUT = 600

MAIN_BODIES = (
    "CreateSessionRequest",
    "CreateSessionResponse",
    "PreflightRequest",
    "PreflightResponse",
    "ProposalsRequest",
    "ProposalsResponse",
    "ReceiptsRequest",
    "ReceiptsResponse",
    "GetSessionResponse",
    "ErrorEnvelope",
    "MockJournalResponse",
)
"""Component names a generated client must use for the bodies of the cycle."""


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a tool; fail with everything it said unless it succeeds."""
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def readme_command(tool: str, url: str, cwd: Path) -> str:
    """Run the README's command line for `tool` (with its URL) in `cwd`."""
    lines = shell_block("generate-clients").splitlines()
    setup = [line for line in lines if line.startswith("URL=")]
    command = [line for line in lines if line.startswith(tool + " ")]
    assert setup and len(command) == 1, f"no {tool} command in the README's block"
    env = {
        **os.environ,
        "VESANOR_MOCK_URL": url,
        "PATH": f"{TOOL_VENV}{os.pathsep}{NODE_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    return run(["bash", "-euo", "pipefail", "-c", "\n".join([*setup, *command])], cwd, env)


@pytest.fixture(scope="module")
def document_server() -> Iterator[MockServer]:
    """A mock serving /openapi.json to the generators."""
    with MockServer(Settings(port=0)) as server:
        yield server


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory, document_server: MockServer) -> Path:
    """A folder with the generated package `vesanor_client` and the cycle program."""
    if not (TOOL_VENV / "openapi-python-client").exists():
        pytest.skip(f"openapi-python-client is not installed: {HOW}")
    folder = tmp_path_factory.mktemp("python-client")
    said = readme_command("openapi-python-client", document_server.url, folder)
    assert "warning" not in said.lower(), said  # the document generates cleanly
    shutil.copy(GENERATORS / "cycle.py", folder)
    return folder


@pytest.fixture(scope="module")
def typescript_types(tmp_path_factory: pytest.TempPathFactory, document_server: MockServer) -> Path:
    """A folder with the generated `vesanor.d.ts`, the cycle program and the node modules."""
    if shutil.which("node") is None or not (NODE_BIN / "tsc").exists():
        pytest.skip(
            "node, npm or the TypeScript tools are missing: install node and npm "
            f"(Debian: apt-get install nodejs npm), then {HOW}"
        )
    folder = tmp_path_factory.mktemp("typescript-types")
    readme_command("openapi-typescript", document_server.url, folder)
    shutil.copy(GENERATORS / "cycle.mts", folder)
    (folder / "node_modules").symlink_to(GENERATORS / "node_modules", target_is_directory=True)
    return folder


@pytest.fixture
def live_mock() -> Iterator[MockServer]:
    """A fresh mock on the default scenario, its control API behind a token."""
    scenario = str(fixtures_dir() / "default.yaml")
    with MockServer(Settings(port=0, scenario=scenario, control_token=CONTROL_TOKEN)) as server:
        yield server
        server.check()


def assert_the_cycle(seen: dict[str, Any], session_id: str, live_mock: MockServer) -> None:
    """What the program saw, and what the mock journaled of it."""
    assert seen == {
        "created": 201,
        "decision": "allow",
        "committed": True,
        "state_version": 1,
        "phase": "verified",
        "conflict": 409,
        "code": "PREPARED_REQUEST_CONSUMED",
        "request_id": seen["request_id"],
        "journaled_proposals": [200, 409],
    }
    assert re.fullmatch(r"req_\d+", seen["request_id"])
    journal = live_mock.service.world.journal.entries(session_id=session_id)
    assert [entry.endpoint for entry in journal] == [
        "create_session",
        "preflight",
        "proposals",
        "receipts",
        "get_session",
        "proposals",
    ]


def test_openapi_python_client_names_the_models_after_the_components(
    python_client: Path,
) -> None:
    package = python_client / "vesanor_client"
    exported = (package / "models" / "__init__.py").read_text()
    for name in MAIN_BODIES:
        assert re.search(rf"^    \"{name}\",$", exported, re.MULTILINE), name
    assert not [name for name in exported.split() if "Body" in name or "Response2" in name]
    api = package / "api"
    modules = {path.relative_to(api).as_posix() for path in api.rglob("*.py")}
    assert {
        "sessions/create_session.py",
        "enforcement/preflight.py",
        "enforcement/propose.py",
        "enforcement/submit_receipt.py",
        "mock/reset.py",
        "mock/get_journal.py",
    } <= modules


def test_a_governed_cycle_type_checks_against_the_generated_python_client_under_mypy_strict(
    python_client: Path,
) -> None:
    # The generator's own client.py passes *args to httpx's __exit__, which mypy refuses;
    # that module is the generator's, so only its errors are left out.
    (python_client / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n\n[mypy-vesanor_client.client]\nignore_errors = True\n"
    )
    said = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--python-executable",
            str(TOOL_VENV / "python"),
            "cycle.py",
        ],
        python_client,
        {**os.environ, "MYPYPATH": str(python_client)},
    )
    assert "Success: no issues found" in said


def test_the_generated_python_client_runs_the_cycle_against_a_live_mock(
    python_client: Path, live_mock: MockServer
) -> None:
    out = run(
        [str(TOOL_VENV / "python"), "cycle.py", live_mock.url, API_KEY, CONTROL_TOKEN],
        python_client,
    )
    assert_the_cycle(json.loads(out.strip().splitlines()[-1]), "generated-py", live_mock)


def test_openapi_typescript_names_the_types_after_the_components_and_opens_free_objects(
    typescript_types: Path,
) -> None:
    types = (typescript_types / "vesanor.d.ts").read_text()
    for name in MAIN_BODIES:
        assert re.search(rf"^        {name}: \{{$", types, re.MULTILINE), name
    free = re.search(r"^        FreeObject: \{\n\s+\[key: string\]: unknown;", types, re.MULTILINE)
    assert free, "FreeObject is not an open map"
    components = types.split("export interface components")[1].split("export type $defs")[0]
    assert "Record<string, never>" not in components
    assert "propose: {" in types and '"get-journal"' not in types


def test_a_governed_cycle_compiles_under_tsc_strict_and_runs_against_a_live_mock(
    typescript_types: Path, live_mock: MockServer
) -> None:
    run(
        [
            str(NODE_BIN / "tsc"),
            "--strict",
            "--noEmitOnError",
            "--target",
            "es2022",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            "--outDir",
            "out",
            "cycle.mts",
        ],
        typescript_types,
    )
    out = run(["node", "out/cycle.mjs", live_mock.url, API_KEY, CONTROL_TOKEN], typescript_types)
    assert_the_cycle(json.loads(out.strip().splitlines()[-1]), "generated-ts", live_mock)
