"""The command line: validate scenario files, verify a running mock, refuse a broken start."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from vesanor_mock.cli import main
from vesanor_mock.config import Settings
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.server import MockServer


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
        assert main(["verify", "--url", server.url]) == 0


def test_verify_fails_when_the_mock_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    with MockServer() as server:
        url = server.url
    assert main(["verify", "--url", url]) == 1
    assert "cannot reach" in capsys.readouterr().err


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
