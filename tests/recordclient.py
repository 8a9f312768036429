"""A real client (requests) for the record/replay tests: a governed cycle, a kill, a handoff.

It reads every id it uses from the answers it got, as an SDK does, so the same code runs
against an upstream through the recording proxy and against a replay of that recording.
Its transcript says what each step got: the status and the decision or error code.
"""

from __future__ import annotations

from typing import Any

import requests

from .contracts_examples import refund_contract
from .test_api_workflows import compiled_workflow

BODY_SECRET = "vsk_live_leaked_in_a_body_7781"
QUERY_SECRET = "vsk_live_leaked_in_a_query_5523"
CARD = "4242-4242-4242-4242"


class Client:
    """Speaks to `<base>/api/v1` with one key; keeps a transcript of what it got."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base = base_url + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.transcript: list[tuple[str, int, str | None]] = []

    def call(self, step: str, method: str, path: str, body: Any = None, **params: str) -> Any:
        """One request; the transcript gets its status and decision or error code."""
        response = self.http.request(
            method, self.base + path, json=body, params=params or None, timeout=10
        )
        answer = response.json()
        error = answer.get("error") if isinstance(answer, dict) else None
        outcome = error.get("code") if isinstance(error, dict) else answer.get("decision")
        self.transcript.append((step, response.status_code, outcome))
        return answer

    def post(self, step: str, path: str, body: dict[str, Any]) -> Any:
        """A POST."""
        return self.call(step, "POST", path, body)


def governed_cycle(client: Client) -> str:
    """Create, the same preflight twice, verify (committed), a refund, read the session."""
    created = client.post(
        "create",
        "/replay/sessions",
        {
            "agent": "refund-bot",
            "environment": "production",
            "contract": {"compiled_session": refund_contract()},
            "metadata": {"api_key": BODY_SECRET, "card": CARD, "customer": "c-17"},
        },
    )
    sid = created["session"]["session_id"]
    fence = created["lease"]["fence_token"]
    path = f"/replay/sessions/{sid}"
    first = client.post("preflight", path + "/preflight", {"fence_token": fence})
    again = client.post("preflight again", path + "/preflight", {"fence_token": fence})
    assert first["prepared_request_id"] != again["prepared_request_id"]
    proposal = client.post(
        "propose verify",
        path + "/proposals",
        {
            "prepared_request_id": again["prepared_request_id"],
            "fence_token": fence,
            "response": {"tool_calls": [{"id": "c1", "name": "verify_customer", "arguments": {}}]},
        },
    )
    client.post(
        "receipt",
        path + "/receipts",
        {
            "pending_call_id": proposal["calls"][0]["pending_call_id"],
            "fence_token": fence,
            "outcome": "success",
            "evidence": {"kind": "local_transaction", "acknowledged": True},
            "output": {"verified": True},
        },
    )
    prep = client.post("preflight", path + "/preflight", {"fence_token": fence})
    client.post(
        "propose refund",
        path + "/proposals",
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": fence,
            "response": {
                "tool_calls": [{"id": "c2", "name": "issue_refund", "arguments": {"amount": 120}}]
            },
        },
    )
    client.call("read", "GET", path, include="pending")
    return str(sid)


def kill(client: Client, sid: str) -> None:
    """Kill the session, then try a preflight on it (409 SESSION_KILLED)."""
    path = f"/replay/sessions/{sid}"
    session = client.call("read before kill", "GET", path)["session"]
    client.post("kill", path + "/kill", {"reason": "operator stop"})
    fence = session["lease"]["fence_token"]
    client.post("preflight after kill", path + "/preflight", {"fence_token": fence})


def handoff(client: Client) -> None:
    """A workflow: root session, an offer to the researcher, the child takes it, complete."""
    workflow = {"type": "root", "role": "orchestrator", "compiled_workflow": compiled_workflow()}
    created = client.post(
        "root", "/replay/sessions", {"agent": "orchestrator", "workflow": workflow}
    )
    root = created["session"]
    wid = root["workflow"]["workflow_id"]
    offered = client.post(
        "offer",
        f"/replay/sessions/{root['session_id']}/handoffs",
        {"to_role": "researcher", "fence_token": created["lease"]["fence_token"]},
    )["handoff"]
    hid = offered["handoff_id"]
    client.post(
        "child",
        "/replay/sessions",
        {
            "agent": "researcher",
            "workflow": {
                "type": "child",
                "workflow_id": wid,
                "role": "researcher",
                "handoff_id": hid,
            },
        },
    )
    client.post("complete", f"/replay/workflows/{wid}/handoffs/{hid}/complete", {})
    client.call("workflow", "GET", f"/replay/workflows/{wid}")


def whole_run(client: Client) -> list[tuple[str, int, str | None]]:
    """Everything above, with a governance-plan lookup carrying a key in its query."""
    sid = governed_cycle(client)
    kill(client, sid)
    handoff(client)
    client.call("plan", "GET", "/governance/plan", agent="refund-bot", environment="production")
    client.call("plan with a key in the query", "GET", "/governance/plan", api_key=QUERY_SECRET)
    return client.transcript
