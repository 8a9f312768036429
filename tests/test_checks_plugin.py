"""The client checks where users meet them: the pytest plugin's findings and coverage."""

from __future__ import annotations

import json

import pytest

CLIENT = """
import pytest
import requests

AUTH = {"Authorization": "Bearer vsk_test_default"}


def post(mock, path, body):
    return requests.post(mock.api_url + path, json=body, headers=AUTH, timeout=5)


def create(mock, sid):
    body = {"session_id": sid, "agent": "refund-bot", "environment": "development"}
    assert post(mock, "/replay/sessions", body).status_code == 201


def kill_then_write(mock):
    create(mock, "s-1")
    post(mock, "/replay/sessions/s-1/kill", {})
    post(mock, "/replay/sessions/s-1/preflight", {"fence_token": 1})
"""

MISUSE = (
    CLIENT
    + """

def test_writes_after_its_own_kill(vesanor_mock):
    kill_then_write(vesanor_mock)


@pytest.mark.vesanor_findings(False)
def test_opted_out(vesanor_mock):
    kill_then_write(vesanor_mock)


def test_leaves_a_call_without_receipt(vesanor_mock):
    create(vesanor_mock, "s-2")
    prep = post(vesanor_mock, "/replay/sessions/s-2/preflight", {"fence_token": 1}).json()
    body = {"prepared_request_id": prep["prepared_request_id"], "fence_token": 1,
            "response": {"tool_calls": [{"id": "c", "name": "lookup", "arguments": {}}]}}
    post(vesanor_mock, "/replay/sessions/s-2/proposals", body)


def test_well_behaved(vesanor_mock):
    create(vesanor_mock, "s-3")
"""
)


def test_an_error_finding_fails_the_test_with_rule_message_hint_and_requests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_misuse=MISUSE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the client misused the protocol during the test*",
            "*error write-after-kill (§3.9): Session 's-1' was killed*",
            "*hint: Once any answer says the session is killed*",
            "*req_000002 #2 POST /api/v1/replay/sessions/s-1/kill -> 200*",
            "*req_000003 #3 POST /api/v1/replay/sessions/s-1/preflight -> 409*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*vesanor-mock findings*",
            "*warning receipt-missing (§3.5)*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= vesanor-mock =*",
            "findings by rule:",
            "  receipt-missing: 1 warning",
            "  write-after-kill: 1 error",
            "vesanor-mock coverage: *situations (*%)",
            "most important missing*",
        ]
    )


@pytest.mark.parametrize("how", ["option", "env", "ini"])
def test_findings_can_be_turned_off_for_a_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makepyfile(test_misuse=MISUSE)
    args = ["-p", "no:cacheprovider"]
    if how == "option":
        args.append("--vesanor-mock-findings=off")
    elif how == "env":
        monkeypatch.setenv("VESANOR_MOCK_FINDINGS", "off")
    else:
        pytester.makeini("[pytest]\nvesanor_mock_findings = off\n")
    pytester.runpytest(*args).assert_outcomes(passed=4)


def test_a_bad_findings_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_misuse=MISUSE)
    monkey = pytest.MonkeyPatch()
    monkey.setenv("VESANOR_MOCK_FINDINGS", "maybe")
    try:
        result = pytester.runpytest("-p", "no:cacheprovider")
    finally:
        monkey.undo()
    result.stderr.fnmatch_lines(["*findings must be 'on' or 'off', not 'maybe'*"])


def test_coverage_is_written_as_json_and_html_and_a_minimum_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_good=CLIENT + "\n\ndef test_one(vesanor_mock):\n    create(vesanor_mock, 'a')\n"
    )
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--vesanor-mock-coverage=cov.json",
        "--vesanor-mock-coverage-min=90",
    )
    assert result.ret == 1
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*coverage written to cov.json and cov.json.html*", "*is below the minimum of 90%*"]
    )
    report = json.loads((pytester.path / "cov.json").read_text())
    assert {s["id"]: s["seen"] for s in report["situations"]}["create_session:2xx"] == 1
    page = (pytester.path / "cov.json.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "✗ missing" in page and "✓ seen ×1" in page
    assert "<h2>create_session (1/" in page and "<script" not in page
    low = pytester.runpytest("-p", "no:cacheprovider", "--vesanor-mock-coverage-min=0.5")
    assert low.ret == 0  # 1 situation of the catalogue is above half a percent


def test_under_xdist_the_workers_coverage_and_findings_are_merged(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_many=CLIENT
        + """

@pytest.mark.parametrize("n", range(4))
def test_each(vesanor_mock, n):
    create(vesanor_mock, f"s-{n}")
"""
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--vesanor-mock-coverage=cov.json"
    )
    result.assert_outcomes(passed=4)
    report = json.loads((pytester.path / "cov.json").read_text())
    assert {s["id"]: s["seen"] for s in report["situations"]}["create_session:2xx"] == 4
    result.stdout.fnmatch_lines(["findings: none", "vesanor-mock coverage: *"])


def test_a_500_from_the_mock_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_boom(vesanor_mock):
            def broken(*args, **kwargs):
                raise RuntimeError("boom")
            vesanor_mock.service.world.runtime.get_session = broken
            import requests
            requests.get(vesanor_mock.api_url + "/replay/sessions/x",
                         headers={"Authorization": "Bearer vsk_test_default"}, timeout=5)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*vesanor-mock had internal errors*"])
