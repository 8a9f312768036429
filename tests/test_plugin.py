"""The pytest plugin, run by pytester: every fixture, the marker, options, xdist, failures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vesanor_mock import pytest_plugin
from vesanor_mock.config import OPTIONS
from vesanor_mock.pytest_plugin import PLUGIN_OPTIONS

EVERY_FIXTURE = """
import pytest
import requests

AUTH = {"Authorization": "Bearer vsk_test_default"}


def create(mock, session_id):
    body = {"session_id": session_id, "agent": "refund-bot", "environment": "production"}
    return requests.post(mock.api_url + "/replay/sessions", json=body,
                         headers={"Authorization": "Bearer " + mock.api_key}, timeout=5)


def test_the_handle_points_at_a_running_mock_on_the_default_scenario(vesanor_mock):
    assert vesanor_mock.api_url == vesanor_mock.url + "/api/v1"
    assert vesanor_mock.api_key == "vsk_test_default"
    assert vesanor_mock.scenario.name == "default"
    assert create(vesanor_mock, "s-1").status_code == 201
    vesanor_mock.control.assert_called("create_session", 1, status=201)


def test_the_next_test_starts_from_a_clean_state(vesanor_mock):
    assert vesanor_mock.control.state()["sessions"] == []
    assert create(vesanor_mock, "s-1").status_code == 201


@pytest.mark.vesanor_scenario("forced-block")
def test_the_marker_loads_a_bundled_scenario_and_its_expectations_are_met(vesanor_mock):
    assert vesanor_mock.scenario.name == "forced-block"
    create(vesanor_mock, "s-1")
    prep = requests.post(vesanor_mock.api_url + "/replay/sessions/s-1/preflight",
                         json={"fence_token": 1}, headers=AUTH, timeout=5).json()
    body = {"prepared_request_id": prep["prepared_request_id"], "fence_token": 1,
            "response": {"tool_calls": [{"id": "c", "name": "issue_refund", "arguments": {}}]}}
    requests.post(vesanor_mock.api_url + "/replay/sessions/s-1/proposals",
                  json=body, headers=AUTH, timeout=5)
    assert vesanor_mock.journal()[-1]["rules_fired"] == ["freeze-refunds"]


@pytest.mark.vesanor_scenario("mine")
def test_the_marker_finds_a_name_in_the_scenario_folder(vesanor_mock):
    assert vesanor_mock.scenario.name == "mine"
    assert vesanor_mock.api_key == "own_key_0123456789"
    assert vesanor_mock.api_keys == {"own_key_0123456789": "own"}


def test_after_a_marker_the_next_test_is_back_on_the_default(vesanor_mock):
    assert vesanor_mock.scenario.name == "default"


def test_the_factory_loads_a_scenario_mid_test(vesanor_mock, vesanor_mock_scenario):
    create(vesanor_mock, "s-1")
    loaded = vesanor_mock_scenario("scenarios/mine.yaml")
    assert loaded.name == "mine"
    assert vesanor_mock.control.journal() == []


def test_the_in_process_variant_needs_no_socket(vesanor_mock_app):
    answer = vesanor_mock_app.client.post(
        "/api/v1/replay/sessions", json={"session_id": "s-1", "agent": "x"},
        headers={"Authorization": "Bearer " + vesanor_mock_app.api_key})
    assert answer.status_code == 201
    vesanor_mock_app.control.assert_called("create_session", 1)
    assert vesanor_mock_app.journal()[0]["session_id"] == "s-1"


@pytest.mark.vesanor_scenario("outage-503")
def test_the_marker_works_in_process_too(vesanor_mock_app):
    assert vesanor_mock_app.scenario.name == "outage-503"
    for status in (503, 503, 201):
        answer = vesanor_mock_app.client.post(
            "/api/v1/replay/sessions", json={"session_id": "s-1", "agent": "x"},
            headers={"Authorization": "Bearer vsk_test_default"})
        assert answer.status_code == status


def test_the_session_server_and_settings_are_there(vesanor_mock_server, vesanor_mock_settings):
    assert vesanor_mock_server.running
    assert vesanor_mock_settings.port == 0 and vesanor_mock_settings.host == "127.0.0.1"
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test project with its own scenario folder."""
    pytester.makeini("[pytest]\nvesanor_mock_scenario_dir = scenarios\n")
    folder = pytester.mkdir("scenarios")
    (folder / "mine.yaml").write_text(
        "scenario: mine\ntenants: [{name: own, api_keys: [own_key_0123456789]}]\n"
    )
    return pytester


def test_a_test_file_using_every_fixture_and_the_marker_passes(project: pytest.Pytester) -> None:
    project.makepyfile(test_every=EVERY_FIXTURE)
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=9)


def test_an_unmet_expectation_fails_the_test_with_a_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vesanor_scenario("forced-block")
        def test_never_proposes(vesanor_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ExpectationFailed: scenario 'forced-block': expectations not met after the test",
            "*expect[[]0[]]: expected at least 1 proposals requests (tool issue_refund), saw 0",
            "*requests seen: none",
            "*1 expectation(s) checked, 1 failed",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str()


def test_an_internal_error_of_the_server_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import requests

        def test_hits_a_bug(vesanor_mock, monkeypatch):
            def broken(*args):
                raise ZeroDivisionError("bug in the mock")
            monkeypatch.setattr(vesanor_mock.service.world.runtime, "governance_plan", broken)
            answer = requests.get(vesanor_mock.api_url + "/governance/plan?agent=a",
                                  headers={"Authorization": "Bearer vsk_test_default"})
            assert answer.status_code == 500

        def test_the_next_test_is_not_blamed(vesanor_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ServerErrors: vesanor-mock had internal errors:*"])


def test_options_win_over_environment_which_wins_over_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", **{"from-ini": "scenario: from-ini\n"})
    pytester.makefile(".yaml", **{"from-env": "scenario: from-env\n"})
    monkeypatch.setenv("VESANOR_MOCK_VALIDATION", "lenient")
    monkeypatch.setenv("VESANOR_MOCK_SCENARIO", "from-env.yaml")
    for _ in range(3):  # a free port probed here can be taken by another process meanwhile
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        pytester.makeini(
            "[pytest]\nvesanor_mock_scenario = from-ini.yaml\nvesanor_mock_validation = off\n"
            f"vesanor_mock_port = {port}\n"
        )
        pytester.makepyfile(
            f"""
            def test_settings(vesanor_mock, vesanor_mock_settings):
                assert vesanor_mock_settings.validation == "strict"
                assert vesanor_mock.scenario.name == "from-env"
                assert vesanor_mock.url == "http://127.0.0.1:{port}"
            """
        )
        result = pytester.runpytest("-p", "no:cacheprovider", "--vesanor-mock-validation=strict")
        if "address already in use" not in result.stdout.str().lower():
            break
    result.assert_outcomes(passed=1)


def test_a_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass\n")
    result = pytester.runpytest("--vesanor-mock-port=eighty")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --vesanor-mock-port: expected a port number, got 'eighty'"]
    )


def test_an_unknown_marker_scenario_errors_with_where_it_looked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vesanor_scenario("no-such-story")
        def test_x(vesanor_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no-such-story: no such file, and no scenario of that name*"])


def test_pytest_fixtures_documents_every_fixture_and_the_marker(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines_random(
        [
            "vesanor_mock_settings [[]session scope[]]*",
            "vesanor_mock_server [[]session scope[]]*",
            "vesanor_mock -- *",
            "*The mock for one test, reset first*",
            "vesanor_mock_scenario -- *",
            "*Load a scenario mid-test*",
            "vesanor_mock_asgi [[]session scope[]]*",
            "vesanor_mock_app -- *",
            "*in-process*",
        ]
    )
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.vesanor_scenario(name_or_path, verify=True)*"])


def test_each_xdist_worker_has_its_own_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest
        import requests

        @pytest.mark.parametrize("n", range(6))
        def test_one_session_each(vesanor_mock, n, tmp_path_factory):
            body = {"session_id": "same-id", "agent": "x"}
            answer = requests.post(vesanor_mock.api_url + "/replay/sessions", json=body,
                                   headers={"Authorization": "Bearer vsk_test_default"})
            assert answer.status_code == 201, "another test's session leaked in"
            assert len(vesanor_mock.control.journal()) == 1
            folder = tmp_path_factory.getbasetemp().parent
            worker = os.environ["PYTEST_XDIST_WORKER"]
            (folder / f"url-{worker}-{n}").write_text(vesanor_mock.url)
        """
    )
    quiet = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", *quiet)
    result.assert_outcomes(passed=6)
    urls = {p.read_text() for p in pytester.path.parent.glob("**/url-gw*")}
    workers = {p.name.split("-")[1] for p in pytester.path.parent.glob("**/url-gw*")}
    assert workers == {"gw0", "gw1"} and len(urls) == 2


def test_in_process_a_dropped_connection_raises_and_the_retry_is_answered(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from vesanor_mock.http.faults import ConnectionDropped

        @pytest.mark.vesanor_scenario("commit-then-drop")
        def test_receipt_retry(vesanor_mock_app):
            client = vesanor_mock_app.client
            client.headers["Authorization"] = "Bearer " + vesanor_mock_app.api_key
            client.post("/api/v1/replay/sessions", json={
                "session_id": "s", "agent": "refund-bot", "environment": "production"})
            prep = client.post("/api/v1/replay/sessions/s/preflight", json={"fence_token": 1})
            proposal = client.post("/api/v1/replay/sessions/s/proposals", json={
                "prepared_request_id": prep.json()["prepared_request_id"], "fence_token": 1,
                "response": {"tool_calls": [
                    {"id": "c", "name": "verify_customer", "arguments": {}}]}})
            receipt = {"pending_call_id": proposal.json()["calls"][0]["pending_call_id"],
                       "fence_token": 1, "outcome": "success", "output": {"verified": True}}
            with pytest.raises(ConnectionDropped):
                client.post("/api/v1/replay/sessions/s/receipts", json=receipt)
            again = client.post("/api/v1/replay/sessions/s/receipts", json=receipt)
            assert again.status_code == 200 and again.json()["state_version"] == 1
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_loading_the_plugin_imports_no_server_stack() -> None:
    code = (
        "import sys, vesanor_mock, vesanor_mock.pytest_plugin\n"
        "print([m for m in ('uvicorn', 'starlette', 'requests', 'yaml') if m in sys.modules])\n"
        "print(sorted(vesanor_mock.__all__) == sorted(vesanor_mock._EXPORTS))\n"
        "print(all(getattr(vesanor_mock, name) for name in vesanor_mock.__all__))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["[]", "True", "True"], done.stderr


def test_docs_pytest_md_names_every_fixture_option_variable_and_ini_key() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "pytest.md").read_text(encoding="utf-8")
    fixtures = [name for name in dir(pytest_plugin) if name.startswith("vesanor_mock")]
    assert len(fixtures) == 6
    for name in fixtures:
        assert f"`{name}`" in text, name
    for name in PLUGIN_OPTIONS:
        option = "--vesanor-mock-" + name.replace("_", "-")
        for word in (option, OPTIONS[name].env, f"vesanor_mock_{name}"):
            assert f"`{word}`" in text, word


def test_a_marker_path_is_also_found_from_the_rootdir(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.vesanor_scenario("scenarios/mine.yaml")
        def test_x(vesanor_mock):
            assert vesanor_mock.scenario.name == "mine"
        """
    )
    monkeypatch.chdir(project.mkdir("elsewhere"))
    result = project.runpytest(str(project.path), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_scenario_file_changed_between_tests_is_read_again(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_first(vesanor_mock, tmp_path_factory):
            path = tmp_path_factory.getbasetemp() / "live.yaml"
            path.write_text("scenario: one\\n")
            assert vesanor_mock.load(path).name == "one"
            assert vesanor_mock.load(path) is vesanor_mock.scenario

        def test_second(vesanor_mock, tmp_path_factory):
            path = tmp_path_factory.getbasetemp() / "live.yaml"
            path.write_text("scenario: second\\n")
            assert vesanor_mock.load(path).name == "second"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_port_taken_by_a_dev_server_names_the_variable_that_chose_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("VESANOR_MOCK_PORT", str(port))
        pytester.makepyfile("def test_it(vesanor_mock):\n    pass\n")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*cannot bind 127.0.0.1:{port}*(set by VESANOR_MOCK_PORT={port} in the environment;"
            " without it the plugin binds 127.0.0.1 on a free port)*"
        ]
    )
