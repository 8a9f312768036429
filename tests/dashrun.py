"""A small run worth looking at: a governed cycle, a forced block, a dropped connection and
a workflow handoff. The dashboard tests, the journal CLI tests and `make screenshots` drive it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY = "vsk_test_default"
SCENARIO = """\
scenario: dashboard-demo
description: A refund cycle with a frozen refund tool, a lost receipt answer and a handoff.
tenants:
  - name: default
    api_keys: [vsk_test_default]
plans:
  - agent: refund-bot
    environment: production
    contracts_dir: contracts/refund-bot
rules:
  - id: freeze-refunds
    when: {endpoint: proposals, tool: issue_refund}
    then:
      block: {code: refunds_frozen, detail: Refunds are frozen during the audit}
  - id: lose-the-answer
    when: {endpoint: receipts, nth: 1}
    then:
      after_commit: {drop_connection: true}
expect:
  - {endpoint: proposals, tool: issue_refund, min: 1}
  - {endpoint: kill, count: 1}
"""


def role_contract(agent: str, tool: str) -> dict[str, Any]:
    """A compiled_session with phases working -> done and one tool that advances to done."""
    return {
        "schema_version": "1.0",
        "agent": agent,
        "phases": [{"name": "working", "initial": True}, {"name": "done", "terminal": True}],
        "transitions": {"working": ["done"], "done": []},
        "tools": {
            tool: {
                "tool": tool,
                "side_effect": "read",
                "evidence_class": "local_transaction",
                "commit_requirement": "none",
                "transitions": {"advances_to": "done"},
            }
        },
    }


WORKFLOW = {
    "schema_version": "1.0",
    "workflow": "report",
    "roles": [
        {"name": "orchestrator", "session_contract": role_contract("orch", "plan_work")},
        {"name": "researcher", "session_contract": role_contract("res", "web_search")},
    ],
    "handoffs": [{"from": "orchestrator", "to": "researcher"}],
}


class Driver:
    """Sends API requests to a running mock with the default key."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {KEY}"

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{self.url}/api/v1{path}", json=body, timeout=10)

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.url}/api/v1{path}", timeout=10)


def load(url: str) -> None:
    """Load the demo scenario (contracts from the repository's fixtures)."""
    answer = requests.post(
        f"{url}/_mock/scenario",
        params={"base_dir": str(FIXTURES)},
        data=SCENARIO.encode(),
        headers={"Content-Type": "application/yaml"},
        timeout=10,
    )
    answer.raise_for_status()


def governed_cycle(url: str, sid: str = "refund-1") -> None:
    """Create, preflight, propose verify_customer, receipt (answer dropped), reconcile with a
    GET, then propose issue_refund (forced block by `freeze-refunds`)."""
    api = Driver(url)
    created = api.post(
        "/replay/sessions", {"session_id": sid, "agent": "refund-bot", "environment": "production"}
    )
    assert created.status_code == 201, created.text
    fence = created.json()["lease"]["fence_token"]
    prep = api.post(f"/replay/sessions/{sid}/preflight", {"fence_token": fence}).json()
    call = {"id": "c1", "name": "verify_customer", "arguments": {"customer_id": "cus_1"}}
    proposal = api.post(
        f"/replay/sessions/{sid}/proposals",
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": fence,
            "response": {"tool_calls": [call]},
        },
    ).json()
    pending = proposal["calls"][0]["pending_call_id"]
    receipt = {
        "pending_call_id": pending,
        "fence_token": fence,
        "outcome": "success",
        "output": {"verified": True, "customer_id": "cus_1"},
    }
    try:
        api.post(f"/replay/sessions/{sid}/receipts", receipt)
    except requests.ConnectionError:
        pass  # the scenario drops this answer after the commit
    else:
        raise AssertionError("the first receipt's connection should have been dropped")
    api.get(f"/replay/sessions/{sid}?include=pending")
    prep = api.post(f"/replay/sessions/{sid}/preflight", {"fence_token": fence}).json()
    refund = {"id": "c2", "name": "issue_refund", "arguments": {"amount": 40}}
    blocked = api.post(
        f"/replay/sessions/{sid}/proposals",
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": fence,
            "response": {"tool_calls": [refund]},
        },
    ).json()
    assert blocked["decision"] == "block", blocked


def handoff(url: str) -> tuple[str, str]:
    """An orchestrator offers work to a researcher, who joins through the handoff."""
    api = Driver(url)
    root = api.post(
        "/replay/sessions",
        {
            "session_id": "orchestrator-1",
            "agent": "orch",
            "workflow": {
                "type": "root",
                "workflow_id": "wf-report",
                "role": "orchestrator",
                "compiled_workflow": WORKFLOW,
            },
        },
    )
    assert root.status_code == 201, root.text
    fence = root.json()["lease"]["fence_token"]
    offered = api.post(
        "/replay/sessions/orchestrator-1/handoffs",
        {"to_role": "researcher", "fence_token": fence, "payload": {"topic": "refunds"}},
    )
    assert offered.status_code == 201, offered.text
    hid = offered.json()["handoff"]["handoff_id"]
    child = api.post(
        "/replay/sessions",
        {
            "session_id": "researcher-1",
            "agent": "res",
            "workflow": {
                "type": "child",
                "workflow_id": "wf-report",
                "role": "researcher",
                "handoff_id": hid,
            },
        },
    )
    assert child.status_code == 201, child.text
    return "wf-report", hid


def kill(url: str, sid: str) -> None:
    """Kill a session through the API, then write to it once more (a client misuse)."""
    api = Driver(url)
    api.post(f"/replay/sessions/{sid}/kill", {"reason": "operator stop"})
    api.post(f"/replay/sessions/{sid}/preflight", {"fence_token": 1})


def drive(url: str) -> None:
    """The whole demo run, from a fresh load."""
    load(url)
    governed_cycle(url)
    handoff(url)
    kill(url, "refund-1")
