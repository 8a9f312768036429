"""The README's examples run as written."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from vesanor_mock.config import Settings
from vesanor_mock.scenarios import fixtures_dir, load_scenario
from vesanor_mock.server import MockServer

README = Path(__file__).resolve().parents[1] / "README.md"


def shell_block(marker: str) -> str:
    """The first ```sh block after an HTML comment marker in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\s*```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"no sh block after <!-- {marker} --> in README.md"
    return found.group(1)


@pytest.fixture
def default_server() -> Iterator[MockServer]:
    """A fresh server on the bundled default scenario, as `make serve` starts it."""
    settings = Settings(port=0, scenario=str(fixtures_dir() / "default.yaml"))
    with MockServer(settings) as server:
        yield server
        server.check()


def test_the_curl_walkthrough_drives_a_session_through_the_governed_cycle(
    default_server: MockServer,
) -> None:
    env = {**os.environ, "VESANOR_MOCK_URL": default_server.url}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell_block("walkthrough")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"code":"argument_invariant_failed"' in out
    assert '"code":"PREPARED_REQUEST_CONSUMED"' in out
    assert '"current":"refunded"' in out
    assert '"state_version":2' in out
    assert out.rstrip().endswith("}") and '"status":"killed"' in out.splitlines()[-1]


def code_block(marker: str, language: str) -> str:
    """The first fenced block of `language` after an HTML comment marker in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", text, re.DOTALL)
    assert found, f"no {language} block after <!-- {marker} --> in README.md"
    return found.group(1)


def test_the_pytest_example_passes_under_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_example=code_block("pytest-example", "python"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_example_reads_the_plan(default_server: MockServer, tmp_path: Path) -> None:
    script = tmp_path / "plan.mjs"
    script.write_text(code_block("node-example", "js"))
    env = {**os.environ, "VESANOR_RUNTIME_URL": default_server.url}
    done = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    plan = requests.get(
        default_server.url + "/api/v1/governance/plan?agent=refund-bot&environment=production",
        headers={"Authorization": "Bearer vsk_test_default"},
        timeout=5,
    ).json()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", plan["approved"]["compiled_hash"])
    assert done.stdout == f"200 approved {plan['approved']['compiled_hash']}\n"


SDK_STAND_IN = """
import os
import requests

base = os.environ["VESANOR_RUNTIME_URL"] + "/api/v1"
auth = {"Authorization": "Bearer " + os.environ["VESANOR_API_KEY"]}
create = {"session_id": "ci-1", "agent": "refund-bot", "environment": "production"}
assert requests.post(base + "/replay/sessions", json=create, headers=auth).status_code == 201
prep = requests.post(base + "/replay/sessions/ci-1/preflight", json={"fence_token": 1},
                     headers=auth).json()["prepared_request_id"]
call = {"id": "c1", "name": "issue_refund", "arguments": {"amount": 10}}
body = {"prepared_request_id": prep, "fence_token": 1, "response": {"tool_calls": [call]}}
answer = requests.post(base + "/replay/sessions/ci-1/proposals", json=body, headers=auth)
assert answer.json()["decision"] == "block"
"""


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_ci_recipe_starts_waits_verifies_exports_and_stops(tmp_path: Path) -> None:
    job = yaml.safe_load(code_block("ci-recipe", "yaml"))["jobs"]["sdk-tests"]
    runs = {step["name"]: step["run"] for step in job["steps"] if "run" in step}
    assert list(runs) == [
        "Install vesanor-mock",
        "Start the mock on a scenario",
        "Wait until it answers",
        "Run the SDK's tests",
        "Check what the mock saw",
        "Gate on coverage",
        "Export the run for an exact replay",
        "Stop the mock",
    ]
    (tmp_path / "sdk_tests.py").write_text(SDK_STAND_IN)
    runs["Install vesanor-mock"] = "vesanor-mock --version"  # installed here already
    runs["Run the SDK's tests"] = f'"{sys.executable}" sdk_tests.py'
    url = f"http://127.0.0.1:{free_port()}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VESANOR_MOCK_")}
    env = {**clean, **job["env"], "MOCK_PORT": url.rsplit(":", 1)[1]}
    env.update(VESANOR_MOCK_URL=url, VESANOR_RUNTIME_URL=url)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    def step(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", runs[name]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        for name in (
            "Install vesanor-mock",
            "Start the mock on a scenario",
            "Wait until it answers",
        ):
            assert step(name).returncode == 0, (name, (tmp_path / "mock.log").read_text())
        too_early = step("Check what the mock saw")
        assert too_early.returncode == 1
        assert (
            "expected at least 1 proposals requests (tool issue_refund), saw 0" in too_early.stdout
        )
        for name in list(runs)[3:]:
            done = step(name)
            assert done.returncode == 0, (name, done.stdout, done.stderr)
    finally:
        pid = int((tmp_path / "mock.pid").read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    log = (tmp_path / "mock.log").read_text()
    assert f"listening on {url}" in log and "decision=block rules=freeze-refunds" in log
    assert "Traceback" not in log
    assert "<!DOCTYPE html>" in (tmp_path / "coverage.html").read_text(encoding="utf-8")
    replay = load_scenario(tmp_path / "replay.yaml")
    assert replay.name == "forced-block-export" and len(replay.spec.expect) > 2
