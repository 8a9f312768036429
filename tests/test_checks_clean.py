"""A well-behaved client yields no findings: every endpoint, and the workflow story of
docs/workflows.md (the bundled scenarios' stories are checked in test_fixtures.py)."""

from __future__ import annotations

from vesanor_mock.catalogue import catalogue
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .contracts_examples import refund_contract
from .mockctl import Control
from .test_api_cycle import call
from .test_fixtures import WORKFLOW


def test_a_well_behaved_client_over_every_endpoint_has_no_findings(
    api: Api, server: MockServer
) -> None:
    control = Control(server.url, server.service.registry)
    assert api.plan(agent="refund-bot").status_code == 200
    created = api.create_session(
        session_id="s-1", agent="refund-bot", contract={"compiled_session": refund_contract()}
    )
    fence = created.json()["lease"]["fence_token"]
    assert api.create_session(session_id="s-1", agent="refund-bot").status_code == 200  # join
    api.label("s-1", key="ticket", value="T-1")
    # one full cycle per model call: preflight, offer only visible tools, propose, receipt
    prep = api.preflight("s-1", fence_token=fence, request={"tools": ["verify_customer"]}).json()
    assert prep["visible_tools"] == ["verify_customer"]
    proposal = api.propose(
        "s-1",
        prepared_request_id=prep["prepared_request_id"],
        fence_token=fence,
        response={"tool_calls": [call("verify_customer")]},
    ).json()
    pending = proposal["calls"][0]["pending_call_id"]
    body = {"pending_call_id": pending, "fence_token": fence, "outcome": "success"}
    assert api.receipt("s-1", **body, output={"verified": True}).status_code == 200
    assert api.receipt("s-1", **body, output={"verified": True}).status_code == 200  # same again
    assert api.tool_filter("s-1", deny=["delete_account"], fence_token=fence).status_code == 200
    # a stale version is learned once, then the session is reloaded
    stale = api.preflight("s-1", fence_token=fence, expected_state_version=0)
    assert error_code(stale) == "STALE_STATE_VERSION"
    version = api.get_session("s-1", include="pending").json()["session"]["state_version"]
    assert (
        api.preflight("s-1", fence_token=fence, expected_state_version=version).status_code == 200
    )
    # another worker takes the lease: the refused fence is followed by a recover
    recovered = api.recover("s-1", holder_id="worker-b").json()
    fence = recovered["lease"]["fence_token"]
    assert api.preflight("s-1", fence_token=fence).status_code == 200
    assert api.kill("s-1", reason="done").json()["session"]["status"] == "killed"
    assert api.get_session("s-1").status_code == 200
    # a bypass is reported on another session, which is then only read and labelled
    api.create_session(session_id="s-2", agent="refund-bot")
    assert api.report_bypass("s-2", provider="openai").status_code == 200
    api.label("s-2", key="incident", value="INC-1")
    workflow_story(api)
    found = control.call("GET", "/findings").json()
    assert found["findings"] == [] and found["checked_requests"] > 20
    assert server.service.coverage.unlisted(catalogue()) == []


def workflow_story(api: Api) -> None:
    """docs/workflows.md: root creates the workflow, a child accepts a handoff and completes
    it, a second offer is reclaimed, the workflow is read and killed."""
    root = api.create_session(
        agent="orchestrator",
        workflow={"type": "root", "role": "orchestrator", "compiled_workflow": WORKFLOW},
    ).json()["session"]
    root_id, wid = root["session_id"], root["workflow"]["workflow_id"]
    offer = {"to_role": "researcher", "fence_token": 1, "resource_claims": ["topic:1"]}
    hid = api.offer_handoff(root_id, **offer).json()["handoff"]["handoff_id"]
    child = {"type": "child", "workflow_id": wid, "role": "researcher", "handoff_id": hid}
    child_id = api.create_session(agent="researcher", workflow=child).json()["session"]
    prep = api.preflight(child_id["session_id"], fence_token=1).json()
    assert prep["decision"] == "allow"
    done = api.complete_handoff(wid, hid, outcome="succeeded", result={"pages": 2})
    assert done.json()["handoff"]["status"] == "completed"
    second = api.offer_handoff(root_id, **{**offer, "resource_claims": ["topic:2"]})
    hid2 = second.json()["handoff"]["handoff_id"]
    assert api.reclaim_handoff(wid, hid2, reason="nobody came").status_code == 200
    assert api.get_workflow(wid).json()["workflow"]["status"] == "active"
    killed = api.kill_workflow(wid, reason="report finished").json()["workflow"]
    assert killed["status"] == "killed"
    assert api.get_session(root_id).json()["session"]["status"] == "killed"
