"""Scenarios users write themselves (PROTOCOL.md §5, §6): extends, bundled names, near
misses, one-pass validation in the project's words, degraded health after a bad reload."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from vesanor_mock.client import ControlError, MockClient
from vesanor_mock.config import Settings
from vesanor_mock.errors import ScenarioError, ScenarioIssue
from vesanor_mock.http.app import MockService
from vesanor_mock.scenarios import fixtures_dir, load_scenario
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer
from vesanor_mock.watch import ScenarioWatcher

from .apiclient import Api
from .mockctl import Control


def write(folder: Path, name: str, text: str) -> Path:
    """A file in `folder` holding dedented `text`."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[ScenarioIssue]:
    """The issues of a scenario that must not load."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return caught.value.issues


# -- extends ----------------------------------------------------------------------------------


def test_a_scenario_extending_default_with_rules_only_keeps_the_refund_bot_plan(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "mine.yaml",
        """\
        extends: default
        rules:
          - id: freeze
            when: {endpoint: proposals, tool: issue_refund}
            then: {block: {code: frozen}}
        """,
    )
    scenario = load_scenario(path)
    assert scenario.name == "mine"
    assert [(p.agent, p.environment, p.status) for p in scenario.spec.plans] == [
        ("refund-bot", "production", "approved")
    ]
    assert scenario.spec.plans[0].compiled is not None
    assert [rule.id for rule in scenario.spec.rules] == ["freeze"]
    assert scenario.spec.api_keys == {"vsk_test_default": "default"}
    assert scenario.warnings == ()


def test_extends_merges_tenants_plans_sessions_by_key_and_appends_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        """\
        scenario: base
        description: the base
        seed: 1
        options: {lease_ttl_s: 60, prepared_ttl_s: 30}
        tenants:
          - {name: default, api_keys: [vsk_test_default]}
          - {name: other, api_keys: [vsk_other]}
        plans:
          - {agent: refund-bot, environment: production, contracts_dir: contracts}
          - {agent: helper, environment: staging, status: draft}
        sessions:
          - {session_id: s1, agent: refund-bot, environment: production, state_version: 1}
        rules:
          - {id: base-rule, when: {endpoint: preflight}, then: {delay_ms: 1}}
        expect:
          - {endpoint: preflight, count: 99}
        """,
    )
    write(
        tmp_path / "contracts",
        "session.yaml",
        (fixtures_dir() / "contracts" / "refund-bot" / "session.yaml").read_text(),
    )
    for tool in (fixtures_dir() / "contracts" / "refund-bot").glob("*.yaml"):
        write(tmp_path / "contracts", tool.name, tool.read_text())
    path = write(
        tmp_path / "sub",
        "child.yaml",
        """\
        extends: ../base.yaml
        options: {lease_ttl_s: 5}
        tenants:
          - {name: other, api_keys: [vsk_other_2]}
        plans:
          - {agent: helper, environment: staging, status: invalid}
        sessions:
          - {session_id: s1, agent: refund-bot, environment: production, state_version: 7}
        rules:
          - {id: own-rule, when: {endpoint: preflight}, then: {delay_ms: 2}}
        """,
    )
    spec = load_scenario(path).spec
    assert (spec.name, spec.description, spec.seed) == ("child", "", 1)
    assert (spec.options.lease_ttl_s, spec.options.prepared_ttl_s) == (5, 30)
    assert spec.api_keys == {"vsk_test_default": "default", "vsk_other_2": "other"}
    assert [(p.agent, p.status) for p in spec.plans] == [
        ("refund-bot", "approved"),
        ("helper", "invalid"),
    ]
    assert [s.state_version for s in spec.sessions] == [7]
    assert [rule.id for rule in spec.rules] == ["base-rule", "own-rule"]
    assert spec.expect == ()


def test_a_chain_of_extends_applies_each_file_in_turn(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: lease-expiry\noptions: {lease_ttl_s: 10}\n")
    write(tmp_path, "b.yaml", "extends: a\nseed: 9\n")
    spec = load_scenario(write(tmp_path, "c.yaml", "extends: b.yaml\n")).spec
    assert (spec.options.lease_ttl_s, spec.seed) == (10, 9)
    assert [rule.id for rule in spec.rules] == ["stall"]


def test_an_extends_cycle_is_a_load_error_naming_the_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: sub/b.yaml\n")
    write(tmp_path, "sub/b.yaml", "extends: ../a.yaml\n")
    (issue,) = problems(tmp_path / "a.yaml")
    assert "extends cycle: a.yaml -> b.yaml -> a.yaml" in issue.message
    assert issue.file is not None and issue.file.endswith("b.yaml")
    assert (issue.line, issue.column) == (1, 10)


def test_an_unknown_base_lists_the_bundled_names_with_the_closest(tmp_path: Path) -> None:
    (issue,) = problems(write(tmp_path, "x.yaml", "extends: defualt\n"))
    assert "did you mean `default`?" in issue.message
    assert "forced-block" in issue.message and (issue.line, issue.column) == (1, 10)


def test_a_problem_in_a_base_is_reported_in_the_base_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        """\
        rules:
          - when: {endpoint: preflight, tenant: nobody}
            then: {delay_ms: 1}
        """,
    )
    issues = problems(write(tmp_path, "child.yaml", "extends: base\nseed: 1\n"))
    assert [(Path(i.file or "").name, i.line) for i in issues] == [("base.yaml", 2)]


# -- one-pass validation, in the project's words ----------------------------------------------

FIVE_PROBLEMS = """\
optoins: {lease_ttl_s: 5}
rules:
  - when: {endpoint: proposal, nth: "2"}
    then: {blok: {code: x}}
  - when: {endpoint: preflight}
    then: {stale_state_version: yes}
  - when: {endpoint: create_sessions}
    then: {delay_ms: 5}
  - when: {endpoint: preflight, tenant: nobody}
    then: {delay_ms: 5}
"""


def test_validate_reports_schema_and_meaning_problems_together_in_one_pass(
    tmp_path: Path,
) -> None:
    issues = problems(write(tmp_path, "five.yaml", FIVE_PROBLEMS))
    found = [(i.line, i.message) for i in issues]
    assert [line for line, _ in found] == [1, 3, 3, 4, 6, 7, 9]
    text = "\n".join(message for _, message in found)
    assert "unknown key 'optoins' (did you mean `options`?)" in text
    assert "unknown endpoint 'proposal' (did you mean `proposals`?)" in text
    assert "unknown key 'blok' (did you mean `block`?)" in text
    assert "unknown endpoint 'create_sessions' (did you mean `create_session`?)" in text
    assert "no tenant 'nobody'" in text
    assert "is not valid under" not in text


def test_a_quoted_nth_says_it_wants_an_integer_or_a_list_of_integers(tmp_path: Path) -> None:
    path = write(
        tmp_path, "n.yaml", 'rules:\n  - {when: {endpoint: any, nth: "2"}, then: {delay_ms: 1}}\n'
    )
    (issue,) = problems(path)
    assert issue.message == (
        "expected an integer >= 1 or a list of integers >= 1, got the string '2' "
        "(write 2, without quotes)"
    )


def test_yes_for_a_boolean_gets_the_yaml_1_2_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "y.yaml",
        "rules:\n  - {when: {endpoint: any}, then: {stale_state_version: yes}}\n",
    )
    (issue,) = problems(path)
    assert "got the string 'yes'" in issue.message and "write true" in issue.message


def test_a_rule_naming_an_unknown_tool_loads_with_a_did_you_mean_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "w.yaml",
        """\
        extends: default
        rules:
          - when: {endpoint: proposals, tool: issue_refnd, agent: refund-bot}
            then: {block: {}}
          - when: {endpoint: preflight, session_id: nobody-made-me}
            then: {delay_ms: 1}
        """,
    )
    scenario = load_scenario(path)
    assert [(w.line, w.path) for w in scenario.warnings] == [
        (3, "/rules/0/when/tool"),
        (5, "/rules/1/when/session_id"),
    ]
    assert "did you mean `issue_refund`?" in scenario.warnings[0].message


# -- hot reload -------------------------------------------------------------------------------


def test_a_failed_reload_makes_health_degraded_until_a_good_one(tmp_path: Path) -> None:
    contracts = fixtures_dir() / "contracts" / "refund-bot"
    for source in contracts.iterdir():
        write(tmp_path / "contracts", source.name, source.read_text())
    path = write(
        tmp_path,
        "s.yaml",
        "extends: default\nplans:\n  - {agent: mine, contracts_dir: contracts}\n",
    )
    service = MockService(Settings(port=0, scenario=str(path)))
    reports: list[str] = []
    watcher = ScenarioWatcher(service, path, reports.append)
    assert str(tmp_path / "contracts") in service.scenario.files  # type: ignore[union-attr]
    session = tmp_path / "contracts" / "session.yaml"
    session.write_text(session.read_text() + "\nbroken: [\n")
    assert watcher.poll()
    assert service.reload_error is not None and "session.yaml" in service.reload_error
    assert "health: degraded" in reports[-1]
    assert service.scenario is not None and service.scenario.name == "s"
    session.write_text((contracts / "session.yaml").read_text())
    assert watcher.poll()
    assert service.reload_error is None


# -- the control API --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One server for the module."""
    with MockServer() as running:
        yield running


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Iterator[Control]:
    """A control client (answers checked against their schemas), back on default after."""
    control = Control(server.url, registry)
    yield control
    server.service.reload_error = None
    control.call("POST", "/scenario", {"name": "default"})
    server.check()


def test_the_bundled_scenarios_are_listed_with_their_descriptions(ctl: Control) -> None:
    listed = ctl.call("GET", "/scenarios").json()["scenarios"]
    names = [item["name"] for item in listed]
    assert names == sorted(names) and {"default", "forced-block", "lease-expiry"} <= set(names)
    default = next(item for item in listed if item["name"] == "default")
    assert "refund-bot" in default["description"]


def test_a_bundled_scenario_loads_by_name_from_a_json_body_or_the_query(ctl: Control) -> None:
    answer = ctl.call("POST", "/scenario", {"name": "forced-block"}).json()
    assert answer["scenario"] == "forced-block" and answer["warnings"] == []
    by_query = ctl.call("POST", "/scenario", params={"name": "lease-expiry"})
    assert by_query.json()["scenario"] == "lease-expiry"


def test_an_unknown_bundled_name_is_a_404_listing_the_names(ctl: Control) -> None:
    response = ctl.call("POST", "/scenario", {"name": "forced-blok"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert "did you mean `forced-block`?" in error["message"]
    assert "default" in error["details"]["bundled"]


def test_the_load_answer_carries_the_warnings(ctl: Control) -> None:
    text = (
        "extends: default\n"
        "rules:\n  - {when: {endpoint: proposals, tool: issue_refnd}, then: {block: {}}}\n"
    )
    answer = ctl.load(text)
    (warning,) = answer["warnings"]
    assert (warning["line"], warning["path"]) == (3, "/rules/0/when/tool")
    assert "did you mean `issue_refund`?" in warning["message"]


def test_health_says_degraded_with_the_error_while_the_last_reload_failed(
    server: MockServer, ctl: Control
) -> None:
    server.service.reload_error = "s.yaml:1:1: broken"
    assert ctl.call("GET", "/health").json() == {
        "status": "degraded",
        "scenario": "default",
        "error": "s.yaml:1:1: broken",
    }


def test_a_rule_that_never_fired_shows_its_near_misses(
    server: MockServer, ctl: Control, registry: SchemaRegistry
) -> None:
    ctl.load(
        "extends: default\n"
        "rules:\n"
        "  - id: typo\n"
        "    when: {endpoint: proposals, tool: issue_refnd}\n"
        "    then: {block: {}}\n"
        "  - id: any-preflight\n"
        "    when: {endpoint: preflight}\n"
        "    then: {delay_ms: 1}\n"
    )
    api = Api(server.url, registry)
    created = api.create_session(agent="refund-bot", environment="production")
    sid = created.json()["session"]["session_id"]
    prep = api.preflight(sid, fence_token=1).json()["prepared_request_id"]
    calls = [{"id": "c1", "name": "issue_refund", "arguments": {"amount": 5}}]
    api.propose(sid, prepared_request_id=prep, fence_token=1, response={"tool_calls": calls})
    rules = {rule["id"]: rule for rule in ctl.call("GET", "/rules").json()["rules"]}
    typo, fired = rules["typo"], rules["any-preflight"]
    assert (fired["fired"], fired["near_misses"]) == (1, [])
    assert (typo["origin"], typo["matched"], typo["fired"]) == ("scenario", 0, 0)
    first = typo["near_misses"][0]
    assert (first["endpoint"], first["session_id"]) == ("proposals", sid)
    assert first["failed"] == [{"field": "tool", "wanted": "issue_refnd", "seen": ["issue_refund"]}]
    assert [miss["endpoint"] for miss in typo["near_misses"]] == [
        "proposals",
        "create_session",
        "preflight",
    ]


def test_a_rule_skipped_by_its_counting_says_so(server: MockServer, ctl: Control) -> None:
    ctl.load("rules:\n  - {id: late, when: {endpoint: get_session, nth: 3}, then: {delay_ms: 1}}\n")
    requests.get(f"{server.url}/api/v1/replay/sessions/nope", timeout=10)
    api_key = {"Authorization": "Bearer vsk_test_default"}
    requests.get(f"{server.url}/api/v1/replay/sessions/nope", headers=api_key, timeout=10)
    (rule,) = ctl.call("GET", "/rules").json()["rules"]
    assert rule["near_misses"][0]["failed"] == [{"field": "nth", "wanted": [3], "seen": 1}]


def test_the_python_client_lists_loads_by_name_and_reads_the_rules(server: MockServer) -> None:
    client = MockClient(server.url)
    assert "lease-expiry" in [item["name"] for item in client.scenarios()]
    assert client.load_scenario("lease-expiry")["scenario"] == "lease-expiry"
    assert client.load_bundled("forced-block")["rules"] == 1
    (rule,) = client.rules()
    assert (rule["id"], rule["fired"], rule["near_misses"]) == ("freeze-refunds", 0, [])
    with pytest.raises(ControlError) as caught:
        client.load_scenario("forced-blok")
    assert caught.value.status == 404
    client.load_bundled("default")
