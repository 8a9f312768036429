"""A real client (requests) for the record/replay tests: a governed cycle, a kill, a handoff.

It reads every id it uses from the answers it got, as an SDK does, so the same code runs
against an upstream through the recording proxy and against a replay of that recording.
It answers a transcript: what each step got (status, decision or error code).
"""

from __future__ import annotations

from typing import Any

import requests

from .contracts_examples import refund_contract
from .test_api_workflows import compiled_workflow


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
        outcome = error["code"] if error else answer.get("decision")
        self.transcript.append((step, response.status_code, outcome))
        return answer


def governed_cycle(client: Client) -> str:
    """Create, verify the customer (committed), try a refund, read the session twice."""
    created = client.call(
        "create",
        "POST",
        "/replay/sessions",
        {"agent": "refund-bot", "environment": "production", "contract": {"compiled_session": refund_contract()},
         "metadata": {"api_key": "vsk_live_leaked_in_body_0042", "customer": "c-17"}},
    )
    sid = created["session"]["session_id"]
    fence = created["lease"]["fence_token"]
    for _ in range(2):  # the same preflight twice: two prepared requests
        prep = client.call("preflight", "POST", f"/replay/sessions/{sid}/preflight", {"fence_token": fence})
    proposal = client.call(
        "propose verify",
        "POST",
        f"/replay/sessions/{sid}/proposals",
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": fence,
            "response": {"tool_calls": [{"id": "c1", "name": "verify_customer", "arguments": {}}]},
        },
    )
    pending = proposal["calls"][0]["pending_call_id"]
    client.call(
        "receipt",
        "POST",
        f"/replay/sessions/{sid}/receipts",
        {
            "pending_call_id": pending,
            "fence_token": fence,
            "outcome": "success",
            "evidence": {"kind": "local_transaction", "acknowledged": True},
            "output": {"verified": True},
        },
    )
    prep = client.call("preflight", "POST", f"/replay/sessions/{sid}/preflight", {"fence_token": fence})
    client.call(
        "propose refund",
        "POST",
        f"/replay/sessions/{sid}/proposals",
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": fence,
            "response": {
                "tool_calls": [{"id": "c2", "name": "issue_refund", "arguments": {"amount": 120}}]
            },
        },
    )
    client.call("get", "GET", f"/replay/sessions/{sid}", include="pending")
    return str(sid)
