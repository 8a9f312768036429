"""The GitHub Action (action.yml and verify/action.yml): its shell steps, run exactly as a
runner runs a composite action's steps.

The runner itself cannot run here, so `Runner` plays its part: it fills each step's `env`
from the inputs (the only expressions the steps use), runs each `run:` script with
`bash --noprofile --norc -eo pipefail`, and carries GITHUB_OUTPUT, GITHUB_ENV and
GITHUB_PATH from step to step the way Actions does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "action.yml"
VERIFY = ROOT / "verify" / "action.yml"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    returncode: int
    output: str


@dataclass
class Runner:
    """A job's state between steps: its environment, PATH additions and temp folder."""

    temp: Path
    workspace: Path
    env: dict[str, str] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)

    def run(
        self, action: Path, inputs: dict[str, str] | None = None, skip: tuple[str, ...] = ()
    ) -> tuple[list[StepResult], dict[str, str]]:
        """Run the action's steps until one fails; answer the steps and the action outputs."""
        spec = yaml.safe_load(action.read_text(encoding="utf-8"))
        given = {name: str(item.get("default", "")) for name, item in spec["inputs"].items()}
        unknown = set(inputs or {}) - set(given)
        assert not unknown, f"{action.name} has no inputs {unknown}"
        given.update(inputs or {})
        steps: dict[str, dict[str, str]] = {}
        results: list[StepResult] = []
        for number, step in enumerate(spec["runs"]["steps"]):
            if step["name"] in skip:
                continue
            result, outputs = self._step(action, step, given, number)
            results.append(result)
            steps[step.get("id", f"step{number}")] = outputs
            if result.returncode != 0:
                break
        values = {
            name: self._evaluate(item["value"], given, steps)
            for name, item in spec.get("outputs", {}).items()
        }
        return results, values

    def _step(
        self, action: Path, step: dict[str, Any], inputs: dict[str, str], number: int
    ) -> tuple[StepResult, dict[str, str]]:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "scripts read inputs from env, never by expression"
        files = {key: self.temp / f"{key.lower()}-{number}" for key in ("OUTPUT", "ENV", "PATH")}
        for path in files.values():
            path.write_text("")
        env = {**os.environ, **self.env, "CI": "true", "RUNNER_TEMP": str(self.temp)}
        env = {k: v for k, v in env.items() if not k.startswith("VESANOR_MOCK_") or k in self.env}
        env["PATH"] = os.pathsep.join([*self.path, env["PATH"]])
        env["GITHUB_ACTION_PATH"] = str(action.parent)
        env.update({f"GITHUB_{key}": str(path) for key, path in files.items()})
        for name, value in step.get("env", {}).items():
            env[name] = self._evaluate(str(value), inputs, {})
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.env.update(_pairs(files["ENV"]))
        self.path[:0] = reversed(files["PATH"].read_text().split())
        result = StepResult(step["name"], done.returncode, done.stdout + done.stderr)
        return result, _pairs(files["OUTPUT"])

    @staticmethod
    def _evaluate(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
        def value(match: re.Match[str]) -> str:
            scope, _, rest = match.group(1).partition(".")
            if scope == "inputs":
                return inputs[rest]
            if scope == "steps":
                step_id, outputs, name = rest.split(".", 2)
                assert outputs == "outputs"
                return steps.get(step_id, {}).get(name, "")
            raise AssertionError(f"an expression the steps should not use: {match.group(0)}")

        return EXPRESSION.sub(value, text)


def _pairs(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """A job that ran the action's install step (once for the module: it pip-installs this
    checkout into a fresh venv, exactly as the action does without a `version`)."""
    temp = tmp_path_factory.mktemp("runner")
    runner = Runner(temp=temp, workspace=temp)
    spec = yaml.safe_load(START.read_text(encoding="utf-8"))
    install = spec["runs"]["steps"][0]
    assert install["name"] == "Install vesanor-mock"
    result, _ = runner._step(START, install, {"version": ""}, 0)
    assert result.returncode == 0, result.output
    assert re.search(r"^vesanor-mock \d+\.\d+\.\d+", result.output, re.MULTILINE)
    return runner


@pytest.fixture
def job(installed: Runner, tmp_path: Path) -> Iterator[Runner]:
    """A fresh job on the installed venv; any mock it left running is stopped after."""
    runner = Runner(temp=tmp_path, workspace=tmp_path, path=list(installed.path))
    yield runner
    pid_file = tmp_path / "vesanor-mock" / "mock.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def propose_a_refund(env: dict[str, str]) -> dict[str, Any]:
    """What an SDK's test does against the mock: create, preflight, propose a refund."""
    base, auth = (
        env["VESANOR_RUNTIME_URL"] + "/api/v1",
        {"Authorization": "Bearer " + env["VESANOR_API_KEY"]},
    )
    create = {"session_id": "ci-1", "agent": "refund-bot", "environment": "production"}
    assert requests.post(f"{base}/replay/sessions", json=create, headers=auth).status_code == 201
    prep = requests.post(
        f"{base}/replay/sessions/ci-1/preflight", json={"fence_token": 1}, headers=auth
    ).json()["prepared_request_id"]
    call = {"id": "c1", "name": "issue_refund", "arguments": {"amount": 10}}
    body = {"prepared_request_id": prep, "fence_token": 1, "response": {"tool_calls": [call]}}
    answer = requests.post(f"{base}/replay/sessions/ci-1/proposals", json=body, headers=auth)
    return dict(answer.json())


INSTALL = ("Install vesanor-mock",)


def test_the_action_starts_the_mock_and_exports_its_url_and_key(job: Runner) -> None:
    steps, outputs = job.run(START, {"scenario": "forced-block", "port": "0"}, skip=INSTALL)
    assert [step.returncode for step in steps] == [0], steps
    url = outputs["url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and not url.endswith(":0")
    assert outputs["api-url"] == url + "/api/v1" and outputs["api-key"] == "vsk_test_default"
    assert job.env["VESANOR_RUNTIME_URL"] == job.env["VESANOR_MOCK_URL"] == url
    assert requests.get(url + "/_mock/health", timeout=5).json()["status"] == "ok"
    assert propose_a_refund(job.env)["decision"] == "block"


def test_verify_checks_writes_the_report_files_and_stops_the_mock(job: Runner) -> None:
    job.run(START, {"scenario": "forced-block", "port": "0"}, skip=INSTALL)
    pid = int((job.temp / "vesanor-mock" / "mock.pid").read_text())
    propose_a_refund(job.env)
    steps, outputs = job.run(VERIFY, {"report-dir": "report"})
    assert [step.returncode for step in steps] == [0], steps[0].output
    report = job.workspace / outputs["report-dir"]
    assert "all met" in (report / "verify.txt").read_text()
    assert (report / "export.yaml").read_text().startswith("# Exported by vesanor-mock")
    coverage = json.loads((report / "coverage.json").read_text())
    assert coverage["covered"] > 0 and coverage["total"] > coverage["covered"]
    assert "proposals:2xx" not in coverage["missing"]
    assert "<html" in (report / "coverage.html").read_text().lower()
    assert "listening on" in (report / "mock.log").read_text()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_verify_fails_the_step_when_an_expectation_fails_yet_still_writes_and_stops(
    job: Runner,
) -> None:
    job.run(START, {"scenario": "forced-block", "port": "0"}, skip=INSTALL)
    steps, _ = job.run(VERIFY)  # the SDK's tests never proposed a refund
    assert steps[0].returncode == 1
    assert "::error title=vesanor-mock verify::" in steps[0].output
    report = job.workspace / "vesanor-mock-report"
    assert "saw 0" in (report / "verify.txt").read_text()
    for name in ("export.yaml", "coverage.json", "coverage.html", "mock.log"):
        assert (report / name).exists(), name
    assert not (job.temp / "vesanor-mock" / "mock.pid").exists()


def test_a_control_token_guards_the_control_api_and_reaches_verify(job: Runner) -> None:
    inputs = {"scenario": "forced-block", "port": "0", "control-token": "ctl-secret-1"}
    steps, outputs = job.run(START, inputs, skip=INSTALL)
    assert steps[0].returncode == 0, steps[0].output
    assert "::add-mask::ctl-secret-1" in steps[0].output
    assert requests.get(outputs["url"] + "/_mock/health", timeout=5).status_code == 401
    assert job.env["VESANOR_MOCK_CONTROL_TOKEN"] == "ctl-secret-1"
    propose_a_refund(job.env)
    steps, _ = job.run(VERIFY)
    assert steps[0].returncode == 0, steps[0].output


def test_a_scenario_that_does_not_load_fails_the_start_with_its_log(job: Runner) -> None:
    steps, _ = job.run(START, {"scenario": "no-such-story", "port": "0"}, skip=INSTALL)
    assert steps[0].returncode == 1
    assert "::error title=vesanor-mock::the mock did not start" in steps[0].output
    assert "no-such-story" in steps[0].output


def test_verify_without_a_started_mock_says_to_run_the_action_first(job: Runner) -> None:
    steps, _ = job.run(VERIFY)
    assert steps[0].returncode == 1
    assert "run the vesanor-mock action first" in steps[0].output


def test_the_readme_job_uses_the_actions_with_their_real_inputs_and_report_folder() -> None:
    from tests.test_readme import code_block

    steps = yaml.safe_load(code_block("ci-action", "yaml"))["jobs"]["sdk-tests"]["steps"]
    uses = [step for step in steps if "uses" in step]
    ours = {step["uses"].split("@")[0]: step for step in uses if "vesanor-mock" in step["uses"]}
    assert list(ours) == ["vesanor/vesanor-mock", "vesanor/vesanor-mock/verify"]
    from vesanor_mock import __version__

    for step, action in zip(ours.values(), (START, VERIFY), strict=True):
        assert step["uses"].endswith(f"@v{__version__}")
        inputs = yaml.safe_load(action.read_text(encoding="utf-8"))["inputs"]
        assert set(step.get("with", {})) <= set(inputs)
    verify_inputs = yaml.safe_load(VERIFY.read_text(encoding="utf-8"))["inputs"]
    upload = next(step for step in uses if step["uses"].startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == verify_inputs["report-dir"]["default"]
    assert ours["vesanor/vesanor-mock/verify"]["if"] == "always()"
