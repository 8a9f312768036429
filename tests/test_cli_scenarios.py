"""The command line with scenarios users write: bundled names, `scenarios`, `verify` fixes."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from vesanor_mock.cli import EXIT_FAILED, EXIT_OK, main
from vesanor_mock.config import Settings
from vesanor_mock.server import MockServer

AUTH = {"Authorization": "Bearer vsk_test_default"}


def test_validate_accepts_a_bundled_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "forced-block"]) == EXIT_OK
    assert capsys.readouterr().out == "forced-block: ok (scenario 'forced-block')\n"


def test_validate_prints_warnings_with_did_you_mean_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "extends: default\n"
        "rules:\n"
        "  - {when: {endpoint: proposals, tool: issue_refnd}, then: {block: {}}}\n"
    )
    assert main(["validate", str(path)]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:3:40: warning: no contract in this scenario has tool 'issue_refnd' "
        "(did you mean `issue_refund`?): this rule fires only if a client's own contract "
        "has it (at /rules/0/when/tool)",
        f"{path}: ok (scenario 'mine', 1 warning(s))",
    ]


def test_the_scenarios_command_lists_every_bundled_scenario_with_its_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["scenarios"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    default = next(line for line in lines if line.startswith("default "))
    assert "refund-bot plan approved in production" in default
    assert any(line.startswith("lease-expiry ") for line in lines)
    assert "extends: NAME" in lines[-1]


def test_serve_with_an_unknown_scenario_lists_the_bundled_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--scenario", "forced-blok", "--port", "0"], env={}) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "did you mean `forced-block`?" in err
    assert "bundled scenarios: bypass-report, circuit-breaker," in err


def test_verify_reads_a_url_without_a_scheme_as_http(capsys: pytest.CaptureFixture[str]) -> None:
    with MockServer(scenario="forced-block") as server:
        bare = server.url.removeprefix("http://")
        assert main(["verify", "--url", bare], env={}) == EXIT_FAILED
    assert "1 expectation(s) checked, 1 failed" in capsys.readouterr().out


def test_verify_with_nothing_to_check_fails_unless_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with MockServer(scenario="default") as server:
        assert main(["verify", "--url", server.url], env={}) == EXIT_FAILED
        assert "nothing to verify" in capsys.readouterr().err
        assert main(["verify", "--url", server.url, "--allow-empty"], env={}) == EXIT_OK
        assert "0 expectation(s) checked, all met" in capsys.readouterr().out


def test_the_verify_report_names_error_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with MockServer(scenario="forced-block") as server:
        requests.get(f"{server.url}/api/v1/replay/sessions/nope", headers=AUTH, timeout=5)
        assert main(["verify", "--url", server.url], env={}) == EXIT_FAILED
    assert "-> 404 SESSION_NOT_FOUND (get_session; session nope)" in capsys.readouterr().out


def test_verify_says_when_the_journal_evicted_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(
        "extends: default\noptions: {journal_limit: 2}\n"
        "expect:\n  - {endpoint: get_session, min: 1}\n"
    )
    with MockServer(Settings(port=0, scenario=str(path))) as server:
        for _ in range(12):
            requests.get(f"{server.url}/api/v1/replay/sessions/x", headers=AUTH, timeout=5)
        assert main(["verify", "--url", server.url], env={}) == EXIT_OK
    assert "10 entries were evicted from the journal" in capsys.readouterr().err
