"""Conformance: sessions, plans and tenants (PROTOCOL.md §1.1, §3.1, §3.2, §3.17)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vesanor_mock.config import Settings
from vesanor_mock.domain.contracts import compiled_hash
from vesanor_mock.domain.world import PlanSeed
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .contracts_examples import refund_contract

OTHER_KEY = "vsk_test_other"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """Two tenants and a plan of every status."""
    settings = Settings(
        port=0,
        api_keys={"vsk_test_default": "default", OTHER_KEY: "other"},
        plans=(
            PlanSeed(
                agent="refund-bot", environment="production", compiled_session=refund_contract()
            ),
            PlanSeed(agent="draft-bot", environment="staging", status="draft"),
            PlanSeed(agent="broken-bot", environment="production", status="invalid"),
        ),
    )
    with MockServer(settings) as running:
        yield running


def test_creating_a_session_answers_201_with_an_authoritative_session_and_its_lease(
    api: Api,
) -> None:
    response = api.create_session(agent="notes-bot", holder_id="worker-a")
    assert response.status_code == 201
    body = response.json()
    session = body["session"]
    assert session["session_id"].startswith("sess_")
    assert session["state_version"] == 0
    assert session["status"] == "active"
    assert session["authority_state"] == "authoritative"
    assert session["environment"] == "development"
    assert session["mode"] == "enforce"
    assert session["lease"] == body["lease"]
    assert body["lease"]["fence_token"] == 1
    assert body["lease"]["holder_id"] == "worker-a"
    assert body["lease"]["expires_at"] is None
    assert session["governance"] == {
        "attachment": "no_plan",
        "compiled_hash": None,
        "source": "none",
        "unenforced": [],
    }


def test_the_same_session_id_and_agent_joins_the_existing_session_with_200(api: Api) -> None:
    first = api.create_session(session_id="shared-1", agent="notes-bot")
    again = api.create_session(session_id="shared-1", agent="notes-bot", holder_id="worker-b")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["session"]["session_id"] == "shared-1"
    assert again.json()["lease"] == first.json()["lease"]


def test_the_same_session_id_with_another_agent_is_a_mismatch(api: Api) -> None:
    api.create_session(session_id="shared-2", agent="notes-bot")
    response = api.create_session(session_id="shared-2", agent="other-bot")
    assert response.status_code == 409
    assert error_code(response) == "SESSION_EXISTS_MISMATCH"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"environment": "development"}, "monitor"),
        ({"environment": "staging"}, "advisory"),
        ({"environment": "production"}, "protective"),
        ({"environment": "production", "mode": "shadow"}, "monitor"),
        ({"environment": "production", "mode": "log-only"}, "monitor"),
        (
            {"environment": "development", "contract": {"compiled_session": refund_contract()}},
            "protective",
        ),
        ({"environment": "production", "enforcement": "advisory"}, "advisory"),
    ],
)
def test_enforcement_follows_mode_contract_source_and_environment(
    api: Api, fields: dict[str, object], expected: str
) -> None:
    response = api.create_session(agent="refund-bot", **fields)
    assert response.json()["session"]["enforcement"] == expected


def test_a_session_attaches_to_the_tenants_approved_plan_for_its_agent_and_environment(
    api: Api,
) -> None:
    session = api.create_session(agent="refund-bot", environment="production").json()["session"]
    assert session["governance"] == {
        "attachment": "attached",
        "compiled_hash": compiled_hash(refund_contract()),
        "source": "plan",
        "unenforced": [],
    }
    assert session["enforcement"] == "protective"
    assert session["phase"]["current"] == "start"


def test_a_contract_can_be_named_by_the_compiled_hash_of_an_approved_plan(api: Api) -> None:
    wanted = compiled_hash(refund_contract())
    session = api.create_session(
        agent="refund-bot", environment="production", contract={"compiled_hash": wanted}
    ).json()["session"]
    assert session["governance"]["compiled_hash"] == wanted
    assert session["governance"]["source"] == "plan"


@pytest.mark.parametrize(
    "fields",
    [
        {"agent": "x-bot", "environment": "production"},
        {"agent": "refund-bot", "environment": "staging"},
    ],
)
def test_the_hash_of_a_plan_for_another_agent_or_environment_is_a_validation_error(
    api: Api, fields: dict[str, str]
) -> None:
    wanted = compiled_hash(refund_contract())
    response = api.create_session(contract={"compiled_hash": wanted}, **fields)
    assert (response.status_code, error_code(response)) == (422, "VALIDATION_FAILED")
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/contract/compiled_hash"


def test_a_compiled_session_for_another_agent_is_a_validation_error_at_its_agent(
    api: Api,
) -> None:
    response = api.create_session(agent="x-bot", contract={"compiled_session": refund_contract()})
    assert (response.status_code, error_code(response)) == (422, "VALIDATION_FAILED")
    assert response.json()["error"]["details"]["errors"][0]["path"] == (
        "/contract/compiled_session/agent"
    )


@pytest.mark.parametrize(
    ("environment", "enforcement"),
    [("development", "monitor"), ("staging", "advisory"), ("production", "protective")],
)
def test_the_approved_artifact_sent_inline_is_the_plan_whatever_way_it_travels(
    api: Api, server: MockServer, environment: str, enforcement: str
) -> None:
    runtime = server.service.world.runtime
    for env in ("development", "staging"):
        if runtime.approved_plan("default", "refund-bot", env) is None:
            runtime.add_plan("default", "refund-bot", env, "approved", refund_contract())
    inline = api.create_session(
        environment=environment, contract={"compiled_session": refund_contract()}
    ).json()["session"]
    by_hash = api.create_session(
        environment=environment, contract={"compiled_hash": compiled_hash(refund_contract())}
    ).json()["session"]
    for session in (inline, by_hash):
        assert session["governance"]["source"] == "plan"
        assert session["enforcement"] == enforcement
    other = refund_contract(risk_defaults={})
    own = api.create_session(environment=environment, contract={"compiled_session": other})
    assert own.json()["session"]["governance"]["source"] == "request"
    assert own.json()["session"]["enforcement"] == "protective"
    server.service.reset()


def test_a_session_of_an_agent_whose_plan_is_broken_shows_artifact_invalid_and_fails_closed(
    api: Api,
) -> None:
    session = api.create_session(agent="broken-bot", environment="production").json()["session"]
    assert session["governance"]["attachment"] == "artifact_invalid"
    assert session["governance"]["source"] == "none"
    prep = api.preflight(session["session_id"], fence_token=1).json()
    assert prep["decision"] == "block"
    assert [r["code"] for r in prep["reasons"]] == ["approved_artifact_invalid"]


def test_unmatched_policy_on_create_overrides_the_contracts(api: Api) -> None:
    sid = api.create_session(
        contract={"compiled_session": refund_contract()}, unmatched_policy="allow"
    ).json()["session"]["session_id"]
    prep = api.preflight(sid, fence_token=1).json()
    call = {"id": "c1", "name": "mystery_tool", "arguments": {}}
    answer = api.propose(
        sid,
        prepared_request_id=prep["prepared_request_id"],
        fence_token=1,
        response={"tool_calls": [call]},
    ).json()
    assert answer["calls"][0]["decision"] == "allow"


def test_an_unknown_compiled_hash_is_a_validation_error_pointing_at_it(api: Api) -> None:
    response = api.create_session(agent="x-bot", contract={"compiled_hash": "sha256:" + "0" * 64})
    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/contract/compiled_hash"


def test_a_contract_that_does_not_compile_is_a_compile_error_with_reason_codes(api: Api) -> None:
    broken = refund_contract()
    broken["phases"] = [{"name": "start"}]
    response = api.create_session(agent="x-bot", contract={"compiled_session": broken})
    assert response.status_code == 422
    assert error_code(response) == "COMPILE_ERROR"
    errors = response.json()["error"]["details"]["errors"]
    assert errors and all(e["reason_code"] == "replay_compile_error" for e in errors)


def test_loading_a_session_answers_it_and_include_pending_adds_pending_calls(api: Api) -> None:
    sid = api.create_session(agent="notes-bot").json()["session"]["session_id"]
    plain = api.get_session(sid).json()["session"]
    assert "pending_calls" not in plain
    with_pending = api.get_session(sid, include="pending").json()["session"]
    assert with_pending["pending_calls"] == []


def test_an_unknown_session_is_404_session_not_found(api: Api) -> None:
    response = api.get_session("sess_missing")
    assert response.status_code == 404
    assert error_code(response) == "SESSION_NOT_FOUND"


def test_another_tenants_session_is_indistinguishable_from_a_missing_one(api: Api) -> None:
    sid = api.create_session(session_id="tenant-a-1", agent="notes-bot").json()["session"][
        "session_id"
    ]
    other = api.with_key(OTHER_KEY)
    theirs = other.get_session(sid)
    missing = other.get_session("tenant-a-never")
    assert theirs.status_code == missing.status_code == 404
    assert error_code(theirs) == error_code(missing)
    assert theirs.json()["error"]["message"].replace(sid, "X") == missing.json()["error"][
        "message"
    ].replace("tenant-a-never", "X")
    kill = other.kill(sid)
    assert kill.status_code == 404
    assert api.get_session(sid).json()["session"]["status"] == "active"


def test_a_client_chosen_session_id_is_free_in_every_other_tenant(api: Api) -> None:
    api.create_session(session_id="same-id", agent="notes-bot")
    response = api.with_key(OTHER_KEY).create_session(session_id="same-id", agent="other-bot")
    assert response.status_code == 201


def test_the_plan_lookup_answers_no_plan_as_a_successful_lookup(api: Api) -> None:
    body = api.plan(agent="nobody").json()
    assert body == {
        "agent": "nobody",
        "environment": "development",
        "status": "no_plan",
        "plan_id": None,
        "draft": None,
        "approved": None,
    }


def test_the_plan_lookup_answers_an_approved_plan_with_its_recomputable_hash(api: Api) -> None:
    body = api.plan(agent="refund-bot", environment="production").json()
    assert body["status"] == "approved"
    assert body["plan_id"].startswith("plan_")
    approved = body["approved"]
    assert approved["approval_id"].startswith("appr_")
    assert approved["compiled_hash"] == compiled_hash(approved["compiled_session"])


def test_the_plan_lookup_answers_a_draft_with_its_version(api: Api) -> None:
    body = api.plan(agent="draft-bot", environment="staging").json()
    assert body["status"] == "draft"
    assert body["draft"]["version"] == 1
    assert body["approved"] is None


def test_a_plan_with_a_broken_artifact_is_approved_artifact_invalid(api: Api) -> None:
    response = api.plan(agent="broken-bot", environment="production")
    assert response.status_code == 422
    assert error_code(response) == "APPROVED_ARTIFACT_INVALID"


def test_the_plan_lookup_without_an_agent_is_a_validation_error(api: Api) -> None:
    response = api.plan(environment="production")
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/agent"


def test_plans_are_per_tenant(api: Api) -> None:
    body = api.with_key(OTHER_KEY).plan(agent="refund-bot", environment="production").json()
    assert body["status"] == "no_plan"
