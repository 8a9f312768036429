"""Caps on resident state (issue 10, PROTOCOL.md §8): sessions, workflows, labels and their
bytes, pending calls. A request over a cap is 422 MOCK_LIMIT_EXCEEDED and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vesanor_mock.config import Settings, parse_limits
from vesanor_mock.errors import ConfigError
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .test_api_cycle import call, start
from .test_api_workflows import compiled_workflow, root


def load(api: Api, options: dict[str, Any]) -> None:
    """Load a scenario with these options (a fresh world)."""
    response = requests.post(
        api.base_url + "/_mock/scenario", json={"scenario": "caps", "options": options}, timeout=10
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def capped(api: Api) -> Iterator[Api]:
    """The module's server with small caps; back to no scenario afterwards."""
    load(
        api,
        {
            "max_sessions_per_tenant": 3,
            "max_workflows_per_tenant": 1,
            "max_labels_per_session": 2,
            "max_label_bytes_per_session": 2000,
            "max_pending_calls_per_session": 2,
        },
    )
    yield api
    load(api, {})


def refused(response: requests.Response, limit: str, maximum: int) -> None:
    assert response.status_code == 422, response.text
    assert error_code(response) == "MOCK_LIMIT_EXCEEDED"
    assert response.json()["error"]["details"] == {"limit": limit, "max": maximum}


def state(api: Api) -> Any:
    found = requests.get(api.base_url + "/_mock/state", timeout=5).json()
    return {key: found[key] for key in ("sessions", "workflows")}


def test_sessions_per_tenant_are_capped_and_a_join_still_works(capped: Api) -> None:
    for n in range(3):
        assert capped.create_session(session_id=f"s{n}").status_code == 201
    before = state(capped)
    refused(capped.create_session(session_id="s3"), "max_sessions_per_tenant", 3)
    assert state(capped) == before
    assert capped.create_session(session_id="s0").status_code == 200


def test_workflows_per_tenant_are_capped(capped: Api) -> None:
    root(capped)
    before = state(capped)
    workflow = {"type": "root", "role": "orchestrator", "compiled_workflow": compiled_workflow()}
    response = capped.create_session(agent="orchestrator", workflow=workflow)
    refused(response, "max_workflows_per_tenant", 1)
    assert state(capped) == before


def test_labels_per_session_are_capped(capped: Api) -> None:
    assert capped.create_session(session_id="l").status_code == 201
    assert capped.label("l", key="a").status_code == 201
    assert capped.label("l", key="b").status_code == 201
    refused(capped.label("l", key="c"), "max_labels_per_session", 2)
    assert len(capped.get_session("l").json()["session"]["labels"]) == 2


def test_label_bytes_per_session_are_capped(capped: Api) -> None:
    assert capped.create_session(session_id="m").status_code == 201
    assert capped.label("m", key="a", metadata={"x": "y" * 1500}).status_code == 201
    refused(
        capped.label("m", key="b", metadata={"x": "y" * 600}), "max_label_bytes_per_session", 2000
    )
    assert [lbl["key"] for lbl in capped.get_session("m").json()["session"]["labels"]] == ["a"]


def test_pending_calls_per_session_are_capped_and_the_prepared_request_is_kept(
    capped: Api,
) -> None:
    sid, fence = start(capped)
    prep = capped.preflight(sid, fence_token=fence).json()
    body = {
        "prepared_request_id": prep["prepared_request_id"],
        "fence_token": fence,
        "response": {"tool_calls": [call("lookup_order", call_id=f"c{n}") for n in range(3)]},
    }
    refused(capped.propose(sid, **body), "max_pending_calls_per_session", 2)
    body["response"]["tool_calls"] = body["response"]["tool_calls"][:2]
    answer = capped.propose(sid, **body)
    assert answer.status_code == 200 and answer.json()["decision"] == "allow"


def test_serve_limits_set_the_caps_and_a_scenario_option_wins(registry: SchemaRegistry) -> None:
    with MockServer(Settings(port=0, limits={"max_sessions_per_tenant": 1})) as running:
        api = Api(running.url, registry)
        assert api.create_session(session_id="one").status_code == 201
        refused(api.create_session(session_id="two"), "max_sessions_per_tenant", 1)
        load(api, {"max_sessions_per_tenant": 2})
        assert api.create_session(session_id="one").status_code == 201
        assert api.create_session(session_id="two").status_code == 201


def test_limits_parse_from_a_flag_and_refuse_unknown_names() -> None:
    assert parse_limits("max_sessions_per_tenant=5, max_labels_per_session=7") == {
        "max_sessions_per_tenant": 5,
        "max_labels_per_session": 7,
    }
    for bad in ("max_sessions=5", "max_labels_per_session", "max_labels_per_session=-1"):
        with pytest.raises(ValueError, match="NAME=N"):
            parse_limits(bad)
    with pytest.raises(ConfigError):
        Settings(limits={"nope": 1})


def test_the_default_caps_are_generous(api: Api) -> None:
    assert api.create_session(session_id="g").status_code == 201
    for n in range(50):
        assert api.label("g", key=f"k{n}", metadata={"x": "y" * 10_000}).status_code == 201
