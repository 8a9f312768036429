"""The command line: validate, verify, openapi, export, help and exit codes (serve: see
test_cli_serve.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from vesanor_mock import __version__
from vesanor_mock.cli import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    SERVE_OPTIONS,
    _parser,
    main,
)
from vesanor_mock.config import OPTIONS, Settings
from vesanor_mock.scenarios import fixtures_dir, load_scenario
from vesanor_mock.server import MockServer

AUTH = {"Authorization": "Bearer vsk_test_default"}


def test_validate_says_ok_for_every_bundled_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in fixtures_dir().glob("*.yaml"))
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out.count(": ok (scenario ") == len(files)


def test_validate_prints_every_problem_with_its_line_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenario: x\nseed: lots\nrules: {}\n")
    assert main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{broken}:2:7: expected integer, got string (at /seed)",
        f"{broken}:3:8: expected array, got object (at /rules)",
    ]


def test_verify_reports_the_failures_of_a_running_mock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with MockServer() as server:
        server.service.load_path(fixtures_dir() / "happy-path.yaml")
        assert main(["verify", "--url", server.url]) == 1
        out = capsys.readouterr().out
        assert "expect[0]: expected exactly 2 receipts requests (status 200), saw 0" in out
        assert "3 expectation(s) checked, 3 failed" in out
        server.service.load_path(fixtures_dir() / "default.yaml")
        assert main(["verify", "--url", server.url, "--allow-empty"]) == 0


def test_verify_fails_when_the_mock_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    with MockServer() as server:
        url = server.url
    assert main(["verify", "--url", url]) == EXIT_UNREACHABLE == 3
    assert "cannot reach the mock at" in capsys.readouterr().err


def test_serve_refuses_to_start_on_a_broken_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - when: {endpoint: nowhere}\n    then: {delay_ms: 1}\n")
    assert main(["serve", "--port", "0", "--scenario", str(broken)]) == 1
    assert f"{broken}:2:22:" in capsys.readouterr().err


def test_the_bundled_default_scenario_keeps_the_default_key_working() -> None:
    settings = Settings(port=0, scenario=str(fixtures_dir() / "default.yaml"))
    with MockServer(settings) as server:
        response = requests.get(
            f"{server.url}/api/v1/governance/plan",
            params={"agent": "refund-bot", "environment": "production"},
            headers={"Authorization": "Bearer vsk_test_default"},
            timeout=5,
        )
    assert response.json()["status"] == "approved"


def test_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "validate", "verify", "openapi", "export"):
        assert command in out
    for code, text in EXIT_CODES.items():
        assert f"  {code}  {text}" in out
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE) == (0, 1, 2, 3)


def test_serve_help_names_the_environment_variable_of_every_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in (*SERVE_OPTIONS, "reload"):
        assert OPTIONS[name].flag in out and f"[{OPTIONS[name].env}]" in out


def test_openapi_prints_the_document_the_server_serves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["openapi"].startswith("3.1")
    with MockServer() as server:
        served = requests.get(server.url + "/openapi.json", timeout=5).json()
    assert printed == served


def test_verify_checks_an_expectation_file_against_a_running_mock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    met, unmet = tmp_path / "met.yaml", tmp_path / "unmet.yaml"
    met.write_text("- {endpoint: any, count: 0}\n")
    unmet.write_text("expect:\n  - {endpoint: kill, min: 1}\n")
    with MockServer() as server:
        assert main(["verify", "--url", server.url, "--expect", str(met)], env={}) == EXIT_OK
        assert "1 expectation(s) checked, all met" in capsys.readouterr().out
        env = {"VESANOR_MOCK_URL": server.url}
        assert main(["verify", "--expect", str(unmet)], env=env) == EXIT_FAILED
        out = capsys.readouterr().out
    assert out.splitlines() == [
        "expect[0]: expected at least 1 kill requests, saw 0",
        "requests seen: none",
        "1 expectation(s) checked, 1 failed",
    ]


def test_verify_refuses_a_broken_expectation_file_with_its_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("- {endpoint: kill}\n")
    assert main(["verify", "--url", "http://127.0.0.1:9", "--expect", str(broken)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{broken}:1:3: a count expectation needs count, min or max" in err


def test_verify_and_export_send_the_control_token_from_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with MockServer(Settings(port=0, control_token="s3cret")) as server:
        assert main(["verify", "--url", server.url], env={}) == EXIT_UNREACHABLE
        assert "401 UNAUTHORIZED" in capsys.readouterr().err
        env = {"VESANOR_MOCK_CONTROL_TOKEN": "s3cret"}
        assert main(["verify", "--url", server.url, "--allow-empty"], env=env) == EXIT_OK
        assert main(["export", "--url", server.url], env=env) == EXIT_OK


def test_export_writes_a_scenario_that_loads_back_and_whose_expectations_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.yaml"
    with MockServer(scenario=fixtures_dir() / "forced-block.yaml") as server:
        requests.get(f"{server.url}/api/v1/replay/sessions/x", headers=AUTH, timeout=5)
        assert main(["export", "--url", server.url, "-o", str(out)], env={}) == EXIT_OK
        assert f"wrote {out} (1 request(s))" in capsys.readouterr().err
        assert main(["verify", "--url", server.url, "--expect", str(out)], env={}) == EXIT_OK
        assert "4 expectation(s) checked, all met" in capsys.readouterr().out
        assert main(["export", "--url", server.url], env={}) == EXIT_OK
        assert capsys.readouterr().out == out.read_text()
        url = server.url
    text = out.read_text()
    assert text.startswith(f"# Exported by vesanor-mock {__version__} from {url}")
    assert '# The scenario\'s own expectation (not checked here): {"endpoint": "proposals"' in text
    assert (
        "# #1 GET /api/v1/replay/sessions/x -> 404 SESSION_NOT_FOUND (get_session; session x)"
        in text
    )
    loaded = load_scenario(out)
    assert loaded.name == "forced-block-export"
    assert [rule.id for rule in loaded.spec.rules] == ["freeze-refunds"]


def test_export_fails_with_3_when_no_mock_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with MockServer() as server:
        url = server.url
    assert main(["export", "--url", url], env={}) == EXIT_UNREACHABLE
    assert "cannot reach the mock" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vesanor_mock", "validate", str(fixtures_dir() / "default.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and done.stdout.endswith(": ok (scenario 'default')\n")


def test_docs_cli_md_names_every_flag_variable_and_exit_code() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert f"## {name}" in text, name
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in text, (name, flag)
    for option in OPTIONS.values():
        assert f"`{option.env}`" in text, option.env
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} |" in text and meaning in text, code


def test_a_bad_flag_value_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "x"])
    assert exited.value.code == EXIT_USAGE
    assert "argument --port: expected a port number, got 'x'" in capsys.readouterr().err
