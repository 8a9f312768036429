"""The pytest plugin with scenarios a user writes: run by pytester as an external project."""

from __future__ import annotations

import pytest

EXTERNAL_PROJECT = """
import pytest
import requests


def auth(mock):
    return {"Authorization": "Bearer " + mock.api_key}


def start(mock, session_id):
    body = {"session_id": session_id, "agent": "refund-bot", "environment": "production"}
    answer = requests.post(mock.api_url + "/replay/sessions", json=body, headers=auth(mock),
                           timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()["session"]


def propose(mock, session_id, tool):
    prep = requests.post(mock.api_url + f"/replay/sessions/{session_id}/preflight",
                         json={"fence_token": 1}, headers=auth(mock), timeout=5).json()
    body = {"prepared_request_id": prep["prepared_request_id"], "fence_token": 1,
            "response": {"tool_calls": [{"id": "c", "name": tool, "arguments": {}}]}}
    return requests.post(mock.api_url + f"/replay/sessions/{session_id}/proposals",
                         json=body, headers=auth(mock), timeout=5).json()


@pytest.mark.vesanor_scenario("frozen")
def test_my_scenario_extends_default_with_rules_and_keeps_the_refund_bot_plan(vesanor_mock):
    session = start(vesanor_mock, "s-1")
    assert session["governance"]["source"] == "plan"
    answer = propose(vesanor_mock, "s-1", "issue_refund")
    assert vesanor_mock.journal()[-1]["rules_fired"] == ["freeze"]
    assert answer["decision"] == "block"


@pytest.mark.vesanor_scenario("lease-expiry", verify=False)
def test_a_bundled_scenario_is_plain_setup_with_verify_false(vesanor_mock):
    assert vesanor_mock.scenario.name == "lease-expiry"
    start(vesanor_mock, "s-1")


def test_a_bundled_scenario_loads_by_name_over_the_control_api(vesanor_mock):
    answer = requests.post(vesanor_mock.url + "/_mock/scenario", json={"name": "forced-block"},
                           timeout=5)
    assert answer.status_code == 200 and answer.json()["scenario"] == "forced-block"
    listed = requests.get(vesanor_mock.url + "/_mock/scenarios", timeout=5).json()
    assert "forced-block" in [item["name"] for item in listed["scenarios"]]
    start(vesanor_mock, "s-1")
    answer = propose(vesanor_mock, "s-1", "issue_refund")
    assert answer["decision"] == "block"  # and forced-block's own expect is met
"""

FROZEN = """\
extends: default
rules:
  - id: freeze
    when: {endpoint: proposals, tool: issue_refund}
    then: {block: {code: frozen}}
"""


def test_an_external_project_extends_default_and_uses_bundled_scenarios(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nvesanor_mock_scenario_dir = scenarios\n")
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "frozen.yaml").write_text(FROZEN, encoding="utf-8")
    pytester.makepyfile(test_external=EXTERNAL_PROJECT)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


LEASE_WITHOUT_VERIFY = """
import pytest

@pytest.mark.vesanor_scenario("lease-expiry")
def test_uses_the_lease_only(vesanor_mock):
    assert vesanor_mock.scenario.name == "lease-expiry"
"""


def test_the_unmet_expect_of_a_bundled_scenario_fails_the_test_by_default(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(LEASE_WITHOUT_VERIFY)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expectations not met*"])


def test_an_option_for_the_run_turns_expect_checking_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LEASE_WITHOUT_VERIFY)
    result = pytester.runpytest("-p", "no:cacheprovider", "--vesanor-mock-no-verify")
    result.assert_outcomes(passed=1)


def test_an_ini_key_turns_expect_checking_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nvesanor_mock_verify = false\n")
    pytester.makepyfile(LEASE_WITHOUT_VERIFY)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_an_unknown_marker_keyword_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vesanor_scenario("lease-expiry", verfy=False)
        def test_x(vesanor_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*vesanor_scenario: unknown keyword(s) verfy (known: verify)*"])


def test_a_broken_scenario_in_a_marker_fails_with_the_lines_validate_prints(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", broken="rules:\n  - {when: {endpoint: proposal}, then: {}}\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vesanor_scenario("broken")
        def test_x(vesanor_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*vesanor_scenario('broken') does not load:",
            "*broken.yaml:2:23: unknown endpoint 'proposal' (did you mean `proposals`?)*",
        ]
    )
    output = result.stdout.str()
    assert "Traceback" not in output and "loading.py" not in output
    assert len([line for line in output.splitlines() if "broken.yaml" in line]) <= 4
