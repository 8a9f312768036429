"""The Python control client: every /_mock call, and assertions that say what was seen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from vesanor_mock.client import ControlError, ExpectationFailed, MockClient
from vesanor_mock.config import Settings
from vesanor_mock.errors import ScenarioError
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.server import MockServer

AUTH = {"Authorization": "Bearer vsk_test_default"}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    """One server for the module."""
    with MockServer() as server:
        yield server


@pytest.fixture
def control(mock: MockServer) -> Iterator[MockClient]:
    """A client on the module's server, back on an empty world for each test."""
    mock.service.load_text("scenario: empty\n", "empty.yaml")
    yield MockClient(mock.url)
    mock.check()


def create(mock: MockServer, session_id: str) -> requests.Response:
    """Create a development session of some agent."""
    body = {"session_id": session_id, "agent": "bot", "environment": "development"}
    return requests.post(f"{mock.url}/api/v1/replay/sessions", json=body, headers=AUTH, timeout=5)


def test_health_reset_state_and_clock(control: MockClient, mock: MockServer) -> None:
    assert control.health() == {"status": "ok", "scenario": "empty"}
    create(mock, "s-1")
    assert [s["session"]["session_id"] for s in control.state()["sessions"]] == ["s-1"]
    assert control.reset()["ok"] is True
    assert control.state()["sessions"] == []
    start = control.clock()["now"]
    assert control.advance_clock(90)["now"] != start
    assert control.clock()["now"].startswith("2026-01-01T00:01:30")


def test_a_scenario_loads_from_a_path_text_or_dict(control: MockClient) -> None:
    loaded = control.load_scenario(fixtures_dir() / "forced-block.yaml")
    assert (loaded["scenario"], loaded["plans"], loaded["rules"]) == ("forced-block", 1, 1)
    assert control.load_scenario(str(fixtures_dir() / "default.yaml"))["scenario"] == "default"
    assert control.load_scenario("scenario: from-text\nseed: 4\n")["scenario"] == "from-text"
    assert control.load_scenario({"scenario": "from-dict"})["scenario"] == "from-dict"
    assert control.health()["scenario"] == "from-dict"


def test_a_broken_scenario_file_raises_its_problems_under_its_own_name(
    control: MockClient, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenario: x\nseed: lots\n")
    with pytest.raises(ScenarioError) as caught:
        control.load_scenario(broken)
    assert caught.value.render() == f"{broken}:2:7: expected integer, got string (at /seed)"
    with pytest.raises(ScenarioError, match=r"<POST /_mock/scenario>:1:7"):
        control.load_scenario("seed: [1]\n")
    assert control.health()["scenario"] == "empty"


def test_the_journal_is_filtered_like_the_control_api(
    control: MockClient, mock: MockServer
) -> None:
    create(mock, "s-1")
    create(mock, "s-2")
    requests.get(f"{mock.url}/api/v1/replay/sessions/nope", headers=AUTH, timeout=5)
    assert [e["seq"] for e in control.journal()] == [1, 2, 3]
    assert [e["session_id"] for e in control.journal(endpoint="create_session")] == ["s-1", "s-2"]
    assert [e["seq"] for e in control.journal(status=404)] == [3]
    assert [e["seq"] for e in control.journal(since=1, session_id="s-2")] == [2]


def test_rules_are_added_and_cleared(control: MockClient, mock: MockServer) -> None:
    rule = {
        "id": "down",
        "when": {"endpoint": "create_session"},
        "then": {"respond": {"status": 503}},
    }
    assert control.add_rules([rule]) == [{"id": "down", "source": "runtime"}]
    assert create(mock, "s-1").status_code == 503
    assert control.clear_rules() == 1
    assert create(mock, "s-1").status_code == 201


def test_verify_answers_the_failures_and_what_the_journal_held(
    control: MockClient, mock: MockServer
) -> None:
    create(mock, "s-1")
    result = control.verify([{"endpoint": "create_session", "count": 2}])
    assert (result.ok, result.checked) == (False, 1)
    assert (
        result.failures[0]["message"]
        == "expect[0]: expected exactly 2 create_session requests, saw 1"
    )
    assert [e["seq"] for e in result.journal] == [1]
    assert control.verify([{"endpoint": "create_session", "count": 1}]).ok


def test_assert_called_passes_and_answers_the_entries(
    control: MockClient, mock: MockServer
) -> None:
    create(mock, "s-1")
    create(mock, "s-2")
    entries = control.assert_called("create_session", 2, status=201)
    assert [e["session_id"] for e in entries] == ["s-1", "s-2"]
    control.assert_called("create_session")
    control.assert_called("create_session", min=1, max=2, session_id="s-2")
    control.assert_called("preflight", 0)
    control.assert_called("any", 2)


def test_assert_called_fails_with_the_counts_and_every_request_in_order(
    control: MockClient, mock: MockServer
) -> None:
    create(mock, "s-1")
    create(mock, "s-1")
    with pytest.raises(ExpectationFailed) as caught:
        control.assert_called("create_session", 1)
    assert str(caught.value).splitlines() == [
        "expect[0]: expected exactly 1 create_session requests, saw 2",
        "  matching requests by status: 201 x1, 200 x1 (seq [1, 2])",
        "requests seen (2, oldest first):",
        "  #1 POST /api/v1/replay/sessions -> 201 (create_session; session s-1)",
        "  #2 POST /api/v1/replay/sessions -> 200 (create_session; session s-1)",
        "1 expectation(s) checked, 1 failed",
    ]
    with pytest.raises(ExpectationFailed, match="expected at least 1 kill requests, saw 0"):
        control.assert_called("kill")


def test_assert_sequence_shows_the_order_seen(control: MockClient, mock: MockServer) -> None:
    create(mock, "s-1")
    requests.get(f"{mock.url}/api/v1/replay/sessions/s-1", headers=AUTH, timeout=5)
    control.assert_sequence(["create_session", "get_session"])
    with pytest.raises(ExpectationFailed) as caught:
        control.assert_sequence(["get_session", "create_session"])
    assert (
        "found the first 1 in order, then no create_session after them; "
        "endpoints seen: create_session, get_session"
    ) in str(caught.value)


def test_assert_verified_checks_the_scenarios_own_expectations(
    control: MockClient, mock: MockServer
) -> None:
    control.load_scenario("scenario: one\nexpect:\n  - {endpoint: create_session, count: 1}\n")
    with pytest.raises(ExpectationFailed, match="saw 0"):
        control.assert_verified()
    create(mock, "s-1")
    control.assert_verified()
    with pytest.raises(ExpectationFailed, match="expected at most 0"):
        control.assert_verified([{"endpoint": "any", "max": 0}])


def test_a_control_token_is_sent_and_its_absence_is_a_clear_error() -> None:
    with MockServer(Settings(port=0, control_token="s3cret")) as server:
        assert MockClient(server.url, token="s3cret").health()["status"] == "ok"
        with pytest.raises(ControlError, match=r"401 UNAUTHORIZED.*control token") as caught:
            MockClient(server.url).health()
    assert caught.value.status == 401


def test_an_unreachable_mock_is_a_control_error() -> None:
    with MockServer() as server:
        url = server.url
    with pytest.raises(ControlError, match=f"cannot reach the mock at {url}/_mock/health"):
        MockClient(url, timeout=2).health()
