"""The /_mock control API (PROTOCOL.md §6): every endpoint, the token, and a cheap reset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from vesanor_mock.config import Settings
from vesanor_mock.domain import contracts, world
from vesanor_mock.errors import ScenarioError
from vesanor_mock.http.app import MockService
from vesanor_mock.scenarios import MAX_BYTES
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api
from .contracts_examples import refund_contract
from .mockctl import Control

SCENARIO: dict[str, Any] = {
    "scenario": "control",
    "description": "a plan, a seeded session, a rule and an expectation",
    "tenants": [{"name": "acme", "api_keys": ["vsk_acme_secret_key"]}],
    "plans": [
        {"agent": "refund-bot", "environment": "production", "compiled_session": refund_contract()}
    ],
    "sessions": [{"session_id": "seeded", "agent": "refund-bot", "environment": "production"}],
    "rules": [
        {"id": "slow", "when": {"endpoint": "get_session", "nth": 99}, "then": {"delay_ms": 1}}
    ],
    "expect": [{"endpoint": "get_session", "count": 1}],
}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One server for the module."""
    with MockServer() as running:
        yield running


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Iterator[Control]:
    """A control client on a server holding SCENARIO, fresh."""
    control = Control(server.url, registry)
    control.load(SCENARIO)
    yield control
    server.check()


@pytest.fixture
def acme(server: MockServer, registry: SchemaRegistry) -> Api:
    """The API as tenant acme."""
    return Api(server.url, registry, "vsk_acme_secret_key")


def test_health_names_the_loaded_scenario(ctl: Control) -> None:
    assert ctl.call("GET", "/health").json() == {"status": "ok", "scenario": "control"}


def test_every_control_answer_has_its_own_request_id_and_leaves_api_ids_alone(
    ctl: Control, acme: Api
) -> None:
    health = ctl.call("GET", "/health")
    assert health.headers["X-Request-Id"].startswith("req_ctl_")
    ctl.call("GET", "/state")
    assert acme.get_session("seeded").headers["X-Request-Id"] == "req_000001"


def test_loading_a_scenario_answers_what_it_holds(ctl: Control) -> None:
    loaded = ctl.load(SCENARIO)
    assert loaded == {
        "ok": True,
        "scenario": "control",
        "description": SCENARIO["description"],
        "tenants": ["acme"],
        "plans": 1,
        "sessions": 1,
        "rules": 1,
        "expect": 1,
        "warnings": [],
    }


@pytest.mark.parametrize(
    "content_type", ["application/yaml", "application/x-yaml", "text/yaml", "application/json"]
)
def test_a_scenario_loads_from_yaml_or_json_media_types(ctl: Control, content_type: str) -> None:
    body = '{"scenario": "typed", "seed": 3}' if "json" in content_type else "scenario: typed\n"
    response = ctl.call("POST", "/scenario", data=body, headers={"Content-Type": content_type})
    assert response.json()["scenario"] == "typed"


def test_a_scenario_body_of_another_media_type_is_415(ctl: Control) -> None:
    response = ctl.call(
        "POST", "/scenario", data="scenario: x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_a_broken_scenario_is_422_with_located_issues_and_the_old_state_stays(
    ctl: Control, acme: Api
) -> None:
    acme.label("seeded", key="before")
    text = "scenario: broken\nseed: lots\nrules:\n  - when: {endpoint: preflite}\n    then: {}\n"
    response = ctl.call(
        "POST", "/scenario", data=text, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "SCENARIO_INVALID"
    lines = [(i["line"], i["path"]) for i in error["details"]["issues"]]
    assert (2, "/seed") in lines and (4, "/rules/0/when/endpoint") in lines
    assert (5, "/rules/0/then") in lines
    assert "<POST /_mock/scenario>:2:7: expected integer, got string" in error["message"]
    assert ctl.call("GET", "/health").json()["scenario"] == "control"
    labels = acme.get_session("seeded").json()["session"]["labels"]
    assert [label["key"] for label in labels] == ["before"]


def test_a_scenario_body_over_one_mib_is_413(ctl: Control) -> None:
    response = ctl.call(
        "POST",
        "/scenario",
        data=b"x" * (MAX_BYTES + 1),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 413


def test_reset_returns_to_the_initial_state_and_drops_run_time_rules(
    ctl: Control, acme: Api
) -> None:
    acme.create_session(agent="refund-bot")
    ctl.call("POST", "/clock/advance", {"seconds": 60})
    ctl.call("POST", "/rules", {"rules": [{"when": {"endpoint": "any"}, "then": {"delay_ms": 1}}]})
    answer = ctl.call("POST", "/reset").json()
    assert answer["clock"]["now"] == "2026-01-01T00:00:00.000Z"
    state = ctl.state()
    assert [s["session"]["session_id"] for s in state["sessions"]] == ["seeded"]
    assert [r["id"] for r in state["rules"]] == ["slow"]
    assert state["journal"]["entries"] == 0


def test_reset_does_no_compiling_work(
    ctl: Control, server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    def counting(raw: Any) -> Any:
        calls.append(raw)
        raise AssertionError("reset must not compile a contract")

    monkeypatch.setattr(contracts, "compile_session", counting)
    monkeypatch.setattr(world, "compile_session", counting)
    for _ in range(20):
        assert ctl.call("POST", "/reset").status_code == 200
    assert calls == []
    assert server.service.world.runtime.plans[("acme", "refund-bot", "production")].compiled


def test_state_shows_tenants_with_masked_keys_sessions_plans_rules_and_journal(
    ctl: Control, acme: Api
) -> None:
    acme.get_session("seeded")
    state = ctl.state()
    assert state["scenario"]["name"] == "control"
    assert state["tenants"] == [{"name": "acme", "api_keys": ["vsk_ac…_key"]}]
    assert "vsk_acme_secret_key" not in str(state)
    assert state["sessions"][0]["tenant"] == "acme"
    assert state["sessions"][0]["session"]["governance"]["source"] == "plan"
    assert state["plans"][0]["status"] == "approved"
    assert state["rules"] == [{"id": "slow", "source": "scenario", "matched": 1, "fired": 0}]
    assert state["journal"] == {"entries": 1, "limit": 10000, "total": 1}
    assert state["workflows"] == []


def test_the_journal_filters_by_endpoint_session_status_and_since(ctl: Control, acme: Api) -> None:
    acme.get_session("seeded")
    acme.get_session("ghost")
    acme.label("seeded", key="k")
    assert [e["endpoint"] for e in ctl.journal()] == ["get_session", "get_session", "labels"]
    assert [e["seq"] for e in ctl.journal(endpoint="get_session")] == [1, 2]
    assert [e["seq"] for e in ctl.journal(session_id="seeded")] == [1, 3]
    assert [e["seq"] for e in ctl.journal(status="404")] == [2]
    assert [e["seq"] for e in ctl.journal(since="2")] == [3]
    entry = ctl.journal(endpoint="labels")[0]
    assert entry["request_body"] == {"key": "k"}
    assert entry["response_body"]["label"]["key"] == "k"


@pytest.mark.parametrize("query", [{"status": "abc"}, {"endpoint": "nope"}, {"color": "red"}])
def test_a_bad_journal_filter_is_422(ctl: Control, query: dict[str, str]) -> None:
    response = ctl.call("GET", "/journal", params=query)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"


def test_verify_without_a_body_checks_the_scenario_expectations(ctl: Control, acme: Api) -> None:
    failed = ctl.verify()
    assert (failed["ok"], failed["checked"]) == (False, 1)
    assert failed["failures"][0]["message"] == (
        "expect[0]: expected exactly 1 get_session requests, saw 0"
    )
    acme.get_session("seeded")
    assert ctl.verify() == {"ok": True, "checked": 1, "failures": [], "findings": []}


def test_verify_with_a_body_checks_those_expectations(ctl: Control, acme: Api) -> None:
    acme.get_session("seeded")
    result = ctl.verify([{"sequence": ["get_session", "labels"]}, {"endpoint": "any", "max": 5}])
    assert result["ok"] is False
    assert [f["index"] for f in result["failures"]] == [0]
    assert result["failures"][0]["seen"] == {
        "endpoints": ["get_session"],
        "matched": 1,
        "missing": "labels",
    }


def test_verify_refuses_an_expectation_that_cannot_be_checked(ctl: Control) -> None:
    response = ctl.call("POST", "/verify", {"expect": [{"endpoint": "preflight"}]})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/expect/0"


def test_the_clock_is_read_and_advanced(ctl: Control) -> None:
    assert ctl.call("GET", "/clock").json() == {
        "now": "2026-01-01T00:00:00.000Z",
        "start": "2026-01-01T00:00:00.000Z",
        "mode": "frozen",
    }
    advanced = ctl.call("POST", "/clock/advance", {"seconds": 90.5}).json()
    assert advanced["now"] == "2026-01-01T00:01:30.500Z"
    assert ctl.call("POST", "/clock/advance", {"seconds": -1}).status_code == 422


def test_rules_added_at_run_time_follow_the_scenario_rules_and_can_be_removed(
    ctl: Control, acme: Api, server: MockServer
) -> None:
    added = ctl.call(
        "POST",
        "/rules",
        {"rules": [{"when": {"endpoint": "get_session"}, "then": {"respond": {"status": 418}}}]},
    ).json()
    assert added["rules"] == [
        {"id": "slow", "source": "scenario"},
        {"id": "rule-2", "source": "runtime"},
    ]
    headers = {"Authorization": "Bearer vsk_acme_secret_key"}
    seeded = f"{server.url}/api/v1/replay/sessions/seeded"
    assert requests.get(seeded, headers=headers, timeout=5).status_code == 418
    removed = ctl.call("DELETE", "/rules").json()
    assert removed == {"rules": [{"id": "slow", "source": "scenario"}], "removed": 1}
    assert requests.get(seeded, headers=headers, timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        (
            {"when": {"endpoint": "labels", "tool": "x"}, "then": {"delay_ms": 1}},
            "/rules/0/when/tool",
        ),
        ({"id": "slow", "when": {"endpoint": "any"}, "then": {"delay_ms": 1}}, "/rules/0/id"),
        ({"when": {"endpoint": "any"}, "then": {}}, "/rules/0/then"),
        (
            {"when": {"endpoint": "any", "tenant": "ghost"}, "then": {"delay_ms": 1}},
            "/rules/0/when/tenant",
        ),
    ],
)
def test_run_time_rules_are_checked_like_scenario_rules(
    ctl: Control, rule: dict[str, Any], path: str
) -> None:
    response = ctl.call("POST", "/rules", {"rules": [rule]})
    assert response.status_code == 422
    assert path in [e["path"] for e in response.json()["error"]["details"]["errors"]]


def test_openapi_json_is_served(server: MockServer) -> None:
    document = requests.get(f"{server.url}/openapi.json", timeout=5).json()
    assert document["openapi"] == "3.1.0"


def test_an_unknown_control_path_is_a_404_envelope(ctl: Control) -> None:
    response = requests.get(f"{ctl.base_url}/_mock/nothing", timeout=5)
    assert response.status_code == 404
    assert response.headers["X-Request-Id"].startswith("req_ctl_")


# -- the control token --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(registry: SchemaRegistry) -> Iterator[MockServer]:
    """A server whose control API needs a token."""
    with MockServer(Settings(port=0, control_token="s3cret")) as running:
        yield running


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer vsk_test_default", "s3cret"])
def test_with_a_control_token_other_callers_get_401(
    guarded: MockServer, registry: SchemaRegistry, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    control = Control(guarded.url, registry)
    for method, path in (("GET", "/health"), ("POST", "/reset"), ("GET", "/journal")):
        response = control.call(method, path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_with_a_control_token_the_token_opens_the_control_api_and_not_the_api(
    guarded: MockServer, registry: SchemaRegistry
) -> None:
    control = Control(guarded.url, registry, token="s3cret")
    assert control.call("GET", "/health").status_code == 200
    response = Api(guarded.url, registry, "s3cret").create_session(agent="a")
    assert response.status_code == 401


# -- a scenario given in the settings -----------------------------------------------------------


def test_the_settings_scenario_is_loaded_at_start(tmp_path: Path, registry: SchemaRegistry) -> None:
    path = tmp_path / "start.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    service = MockService(Settings(port=0, scenario=str(path)), registry)
    assert service.scenario is not None and service.scenario.name == "control"
    assert ("acme", "seeded") in service.world.runtime.sessions


def test_a_broken_settings_scenario_stops_the_start(
    tmp_path: Path, registry: SchemaRegistry
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("seed: lots\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml:1:7"):
        MockService(Settings(port=0, scenario=str(path)), registry)
