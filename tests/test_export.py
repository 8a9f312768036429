"""Export: a run becomes a scenario that loads back and, replayed, gives the same journal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from vesanor_mock.client import MockClient
from vesanor_mock.config import Settings
from vesanor_mock.errors import ScenarioError
from vesanor_mock.scenarios import dump_scenario, fixtures_dir, load_scenario, load_scenario_text
from vesanor_mock.scenarios.files import find_scenario, read_expectations
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

SECRET = "acme_live_key_0123456789"
SCENARIO = f"""
scenario: two-tenants
seed: 42
clock: {{start: "2026-03-01T12:00:00Z"}}
options: {{lease_ttl_s: 60}}
tenants:
  - {{name: default, api_keys: [vsk_test_default]}}
  - {{name: acme, api_keys: ["{SECRET}"]}}
plans:
  - agent: refund-bot
    environment: production
    contracts_dir: {fixtures_dir() / "contracts" / "refund-bot"}
sessions:
  - {{session_id: seeded, tenant: acme, agent: helper, state_version: 3}}
rules:
  - id: freeze-refunds
    when: {{endpoint: proposals, tool: issue_refund}}
    then: {{block: {{code: refunds_frozen}}}}
  - when: {{endpoint: get_session, nth: 2}}
    then: {{respond: {{status: 503, body: {{error: busy}}}}}}
expect:
  - {{endpoint: kill, count: 1}}
"""


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[MockServer, list[str]]]:
    """A server on SCENARIO after a run of requests, with the key each request used."""
    path = tmp_path / "two-tenants.yaml"
    path.write_text(SCENARIO)
    with MockServer(scenario=path) as server:
        MockClient(server.url).add_rules(
            [{"id": "late", "when": {"endpoint": "labels"}, "then": {"advance_clock_s": 30}}]
        )
        keys = drive(server.url)
        yield server, keys


def drive(url: str) -> list[str]:
    """A governed cycle with a forced block, a scripted 503, and a second tenant's calls."""
    calls: list[tuple[str, str, str, Any]] = [
        (
            "vsk_test_default",
            "POST",
            "/replay/sessions",
            {"session_id": "s-1", "agent": "refund-bot", "environment": "production"},
        ),
        ("vsk_test_default", "POST", "/replay/sessions/s-1/preflight", {"fence_token": 1}),
        ("vsk_test_default", "GET", "/replay/sessions/s-1", None),
        ("vsk_test_default", "GET", "/replay/sessions/s-1?include=pending", None),
        ("vsk_test_default", "POST", "/replay/sessions/s-1/labels", {"key": "k", "value": "v"}),
        (SECRET, "GET", "/replay/sessions/seeded", None),
        (SECRET, "POST", "/replay/sessions/seeded/kill", {"reason": "done"}),
        (SECRET, "GET", "/replay/sessions/s-1", None),
        ("vsk_test_default", "POST", "/replay/sessions/s-1/labels", {"key": 1}),
    ]
    prep = send(url, *calls[0])
    prep = send(url, *calls[1])
    proposal = {
        "prepared_request_id": prep.json()["prepared_request_id"],
        "fence_token": 1,
        "response": {
            "tool_calls": [{"id": "c1", "name": "issue_refund", "arguments": {"amount": 5}}]
        },
    }
    calls.insert(2, ("vsk_test_default", "POST", "/replay/sessions/s-1/proposals", proposal))
    for call in calls[2:]:
        send(url, *call)
    return [key for key, *_ in calls]


def send(url: str, key: str, method: str, path: str, body: Any) -> requests.Response:
    """One API request."""
    return requests.request(
        method,
        f"{url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )


def replay(url: str, journal: list[dict[str, Any]], keys: list[str]) -> None:
    """Send the journal's requests again, each with the key given for it."""
    for entry, key in zip(journal, keys, strict=True):
        with contextlib.suppress(requests.ConnectionError):
            requests.request(
                entry["method"],
                url + entry["path"],
                json=entry["request_body"],
                headers={"Authorization": f"Bearer {key}"},
                timeout=5,
            )


def comparable(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal entries without the one wall-time field."""
    return [{k: v for k, v in entry.items() if k != "duration_ms"} for entry in journal]


def test_the_export_fits_its_schema_and_replays_to_the_same_journal(
    run: tuple[MockServer, list[str]], tmp_path: Path
) -> None:
    server, keys = run
    control = MockClient(server.url)
    answer = control.export()
    assert SchemaRegistry.load().validate("control/export", answer) == []
    journal = control.journal()
    assert len(journal) == 10 and {e["outcome"] for e in journal} >= {"handled", "raw"}
    exported = tmp_path / "exported.yaml"
    exported.write_text(dump_scenario(answer["scenario"], "a header\nof two lines"))
    scenario = load_scenario(exported)
    assert (scenario.name, scenario.spec.seed) == ("two-tenants-export", 42)
    stand_in = {SECRET: answer["keys"][0]["export_key"]}
    with MockServer(scenario=exported) as again:
        replay(again.url, journal, [stand_in.get(k, k) for k in keys])
        replayed = MockClient(again.url)
        assert comparable(replayed.journal()) == comparable(journal)
        assert replayed.verify(findings=False).ok
        replayed.reset()
        failed = replayed.verify()
    assert not failed.ok
    assert "expected exactly 10 requests to any endpoint, saw 0" in failed.report()


def test_the_export_hides_every_key_but_the_public_default_one(
    run: tuple[MockServer, list[str]],
) -> None:
    server, _ = run
    answer = MockClient(server.url).export()
    assert answer["keys"] == [
        {"tenant": "acme", "key": "acme_l…6789", "export_key": "vsk_test_export_1"}
    ]
    assert SECRET not in str(answer)
    assert answer["scenario"]["tenants"] == [
        {"name": "default", "api_keys": ["vsk_test_default"]},
        {"name": "acme", "api_keys": ["vsk_test_export_1"]},
    ]


def test_the_export_carries_rules_sessions_and_the_observed_requests(
    run: tuple[MockServer, list[str]],
) -> None:
    server, _ = run
    answer = MockClient(server.url).export()
    document = answer["scenario"]
    assert [r["id"] for r in document["rules"]] == ["freeze-refunds", "rule-2", "late"]
    assert answer["runtime_rules"] == 1
    assert answer["original_expect"] == [{"endpoint": "kill", "count": 1}]
    assert document["sessions"] == [
        {"tenant": "acme", "session_id": "seeded", "agent": "helper", "state_version": 3}
    ]
    assert document["clock"] == {"start": "2026-03-01T12:00:00Z", "mode": "frozen"}
    assert document["options"]["lease_ttl_s"] == 60
    assert "compiled_session" in document["plans"][0]
    expect = document["expect"]
    assert expect[0] == {"endpoint": "any", "count": 10}
    assert expect[1]["sequence"][:3] == ["create_session", "preflight", "proposals"]
    assert {"endpoint": "get_session", "status": 503, "count": 1} in expect
    assert {"endpoint": "labels", "status": 422, "count": 1} in expect


def test_strings_that_look_like_other_types_survive_a_dump_and_load() -> None:
    tricky = ["0o17", "0x1F", "off", "yes", "null", "~", "1e3", "2026-01-01", "12:30", "-"]
    document = {"scenario": "tricky", "tenants": [{"name": "t", "api_keys": tricky}]}
    loaded = load_scenario_text(dump_scenario(document), "tricky.yaml")
    assert list(loaded.spec.api_keys) == tricky


def test_scenarios_are_found_by_path_folder_name_or_bundled_name(tmp_path: Path) -> None:
    own = tmp_path / "forced-block.yml"
    own.write_text("scenario: mine\n")
    assert find_scenario("forced-block") == fixtures_dir() / "forced-block.yaml"
    assert find_scenario("forced-block", [tmp_path]) == own
    assert find_scenario(own) == own
    assert find_scenario("forced-block.yml", [tmp_path]) == own
    with pytest.raises(ScenarioError, match="no scenario of that name in"):
        find_scenario("nowhere", [tmp_path])


def test_expectation_files_are_a_list_or_a_scenario_and_errors_are_located(
    tmp_path: Path,
) -> None:
    listed = tmp_path / "expect.yaml"
    listed.write_text("- {endpoint: kill, count: 1}\n- sequence: [create_session]\n")
    assert read_expectations(listed)[0] == {"endpoint": "kill", "count": 1}
    assert (
        read_expectations(fixtures_dir() / "happy-path.yaml")[2]["sequence"][0] == "create_session"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "expect:\n  - {endpoint: kill, count: 1}\n  - {endpoint: nowhere, count: 1}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        read_expectations(broken)
    assert caught.value.render().startswith(f"{broken}:3:16: expected one of ")
    unmeetable = tmp_path / "unmeetable.yaml"
    unmeetable.write_text("- {endpoint: kill}\n- {endpoint: get_session, tool: x, count: 1}\n")
    with pytest.raises(ScenarioError) as caught:
        read_expectations(unmeetable)
    assert caught.value.render().splitlines() == [
        f"{unmeetable}:1:3: a count expectation needs count, min or max (at /0)",
        f"{unmeetable}:2:33: never matches: get_session requests carry no tool (at /1/tool)",
    ]
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ScenarioError, match="a list of expectations"):
        read_expectations(scalar)


def test_a_posted_scenario_finds_its_contracts_through_base_dir() -> None:
    with MockServer(Settings(port=0)) as server:
        text = (fixtures_dir() / "forced-block.yaml").read_bytes()
        posted = requests.post(
            server.url + "/_mock/scenario",
            params={"base_dir": str(fixtures_dir())},
            data=text,
            headers={"Content-Type": "application/yaml"},
            timeout=5,
        )
        assert posted.status_code == 200, posted.text
        without = requests.post(
            server.url + "/_mock/scenario",
            data=text,
            headers={"Content-Type": "application/yaml"},
            timeout=5,
        )
        assert without.status_code == 422


def test_a_short_key_is_never_shown_whole_in_the_state() -> None:
    with MockServer() as server:
        control = MockClient(server.url)
        control.load_scenario("tenants: [{name: t, api_keys: [key_abcdefgh, vsk_test_default]}]\n")
        assert control.state()["tenants"] == [{"name": "t", "api_keys": ["ke…", "vsk_te…ault"]}]
