"""Coverage (PROTOCOL.md §7.2): a catalogue derived from the contract, counted over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from vesanor_mock.catalogue import CONFLICTS, catalogue, code_status, error_codes
from vesanor_mock.client import MockClient
from vesanor_mock.domain.coverage import KILL_ACTORS, REASON_CODES
from vesanor_mock.http.api import OPERATIONS as ROUTES
from vesanor_mock.openapi import OPERATIONS
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api
from .contracts_examples import refund_contract
from .mockctl import Control
from .test_api_cycle import call

DOMAIN = Path(__file__).resolve().parents[1] / "src" / "vesanor_mock" / "domain"
MOCK_ONLY = {
    "NOT_FOUND": "an unknown path is no endpoint",
    "METHOD_NOT_ALLOWED": "a wrong method is no endpoint",
    "INTERNAL_ERROR": "a bug in the mock, never a situation to cover",
    "MOCK_LIMIT_EXCEEDED": "the mock protecting itself (§8)",
    "CONTROL_FORBIDDEN": "control API only",
    "SCENARIO_INVALID": "control API only",
    "REPLAY_MISMATCH": "replay mode only (§9)",
    "UPSTREAM_UNAVAILABLE": "record mode only (§9)",
    "CONFLICT": "the generic default of the Conflict class",
    "UNPROCESSABLE": "the generic default of the Unprocessable class",
}


def ids() -> set[str]:
    return {s.id for s in catalogue()}


def domain_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOMAIN.glob("*.py")))


# -- the catalogue follows the contract ------------------------------------------------------


def test_every_served_endpoint_has_a_2xx_situation_and_a_list_of_conflicts() -> None:
    for route in ROUTES:
        assert f"{route.name}:2xx" in ids(), route.name
        assert route.name in CONFLICTS, route.name
    assert set(CONFLICTS) == {op.endpoint for op in OPERATIONS}


def test_every_error_code_the_mock_can_answer_has_a_situation() -> None:
    covered = {ident.split(":")[2] for ident in ids() if ident.count(":") == 2}
    table = {code for codes in error_codes().values() for code in codes}
    raised = set(re.findall(r'code="([A-Z_]+)"', domain_text()))
    for code in sorted((table | raised) - set(MOCK_ONLY)):
        assert code in covered, f"{code} has no situation in the coverage catalogue"


def test_each_listed_code_uses_a_status_its_endpoint_can_answer() -> None:
    statuses = code_status()
    for op in OPERATIONS:
        for code in CONFLICTS[op.endpoint]:
            assert statuses[code] in op.errors, (op.endpoint, code)


def test_every_reason_code_and_kill_actor_in_the_domain_has_a_situation() -> None:
    text = domain_text()
    reasons = set(re.findall(r'Reason\(\s*"([a-z_]+)"', text))
    reasons |= set(re.findall(r'\bcode = "([a-z_]+)"', text))
    reasons |= set(re.findall(r'_CODE = "([a-z_]+)"', text))
    assert reasons and reasons <= set(REASON_CODES), reasons - set(REASON_CODES)
    actors = set(re.findall(r'kill\([^()]*"([a-z_]+)"\)', text))
    actors |= set(re.findall(r'actor="([a-z_]+)"', text))
    assert actors and actors <= set(KILL_ACTORS), actors - set(KILL_ACTORS)
    for code in REASON_CODES:
        assert f"reason:{code}" in ids()
    for actor in KILL_ACTORS:
        assert f"state:killed:{actor}" in ids()


def test_every_scenario_effect_and_fault_has_a_situation() -> None:
    then = SchemaRegistry.load().schema("scenario")["$defs"]["Then"]["properties"]
    kinds = {ident.split(":")[1] for ident in ids() if ident.split(":")[0] in ("fault", "effect")}
    assert set(then) == kinds
    assert {"fault:respond:2xx", "fault:respond:4xx", "fault:respond:5xx"} <= ids()


def test_situation_ids_are_unique_and_stable() -> None:
    listed = [s.id for s in catalogue()]
    assert len(listed) == len(set(listed))
    assert {
        "receipts:409:SESSION_KILLED",
        "reason:wrong_phase",
        "fault:drop_connection",
        "state:killed:circuit_breaker",
        "preflight:2xx",
    } <= set(listed)


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Iterator[Control]:
    control = Control(server.url, registry)
    control.call("DELETE", "/coverage")
    yield control


def cov(ctl: Control) -> dict[str, Any]:
    return dict(ctl.call("GET", "/coverage").json())


def seen(ctl: Control) -> dict[str, int]:
    return {s["id"]: s["seen"] for s in cov(ctl)["situations"] if s["seen"]}


def test_coverage_counts_what_the_client_met_and_its_totals_agree(api: Api, ctl: Control) -> None:
    api.create_session(session_id="s-1", agent="refund-bot", contract=refund_contract_body())
    prep = api.preflight("s-1", fence_token=1).json()["prepared_request_id"]
    api.propose(
        "s-1",
        prepared_request_id=prep,
        fence_token=1,
        response={"tool_calls": [call("issue_refund", {"amount": 1})]},
    )
    api.preflight("s-1", fence_token=7)
    api.get_session("s-1")
    api.get_session("s-1")
    assert seen(ctl) == {
        "create_session:2xx": 1,
        "preflight:2xx": 1,
        "proposals:2xx": 1,
        "reason:wrong_phase": 1,
        "reason:precondition_not_met": 1,
        "preflight:409:FENCE_MISMATCH": 1,
        "state:fence_rotated": 1,
        "get_session:2xx": 2,
    }
    report = cov(ctl)
    assert report["total"] == len(report["situations"]) == len(catalogue())
    assert report["covered"] == sum(1 for s in report["situations"] if s["seen"])
    assert set(report["missing"]) == {s["id"] for s in report["situations"] if not s["seen"]}
    assert report["missing"][0].endswith(":2xx")  # the most important missing come first


def refund_contract_body() -> dict[str, Any]:
    return {"compiled_session": refund_contract()}


def test_faults_effects_and_states_are_covered_from_the_rules_that_fired(
    api: Api, ctl: Control
) -> None:
    api.create_session(session_id="s-1", agent="refund-bot", contract=refund_contract_body())
    rules = [
        {"when": {"endpoint": "get_session", "nth": 1}, "then": {"drop_connection": True}},
        {"when": {"endpoint": "get_session", "nth": 2}, "then": {"respond": {"status": 503}}},
        {"when": {"endpoint": "labels"}, "then": {"kill_session": {}}},
    ]
    ctl.call("POST", "/rules", {"rules": rules})
    with pytest.raises(requests.ConnectionError):
        api.get_session("s-1")
    raw = requests.get(
        f"{api.base_url}/api/v1/replay/sessions/s-1",
        headers={"Authorization": f"Bearer {api.key}"},
        timeout=5,
    )
    assert raw.status_code == 503  # a scripted raw answer: outside the contract's schemas
    api.label("s-1", key="k")
    api.preflight("s-1", fence_token=1)
    found = seen(ctl)
    for ident in (
        "fault:drop_connection",
        "fault:respond:5xx",
        "effect:kill_session",
        "state:killed:scenario",
        "preflight:409:SESSION_KILLED",
    ):
        assert found.get(ident), ident
    assert "get_session:2xx" not in found  # a raw answer is not the endpoint answering


def test_coverage_accumulates_across_resets_and_loads_until_cleared(api: Api, ctl: Control) -> None:
    api.get_session("nope")
    ctl.call("POST", "/reset")
    api.get_session("nope")
    ctl.load({"scenario": "other"})
    api.get_session("nope")
    assert seen(ctl) == {"get_session:404:SESSION_NOT_FOUND": 3}
    cleared = ctl.call("DELETE", "/coverage").json()
    assert cleared["covered"] == 0 and len(cleared["missing"]) == cleared["total"]
    assert seen(ctl) == {}


def test_a_query_on_coverage_is_a_422_with_a_pointer(api: Api, ctl: Control) -> None:
    response = ctl.call("GET", "/coverage", params={"kind": "fault"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/kind"


def test_the_client_reads_coverage(api: Api, ctl: Control, server: MockServer) -> None:
    api.get_session("nope")
    client = MockClient(server.url)
    assert client.coverage()["covered"] == 1
    assert client.clear_coverage()["covered"] == 0
