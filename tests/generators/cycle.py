"""The governed cycle through a client that openapi-python-client generated from /openapi.json.

Run by tests/test_generated_clients.py: type-checked with `mypy --strict` against the
generated package `vesanor_client`, then run against a live mock. It prints one JSON object
with what it saw, for the test to check. No casts: every value has the generated type.
"""

from __future__ import annotations

import json
import sys

from vesanor_client import AuthenticatedClient
from vesanor_client.api.enforcement import preflight, propose, submit_receipt
from vesanor_client.api.mock import get_journal
from vesanor_client.api.sessions import create_session, get_session
from vesanor_client.models import (
    CreateSessionRequest,
    CreateSessionResponse,
    Environment,
    ErrorEnvelope,
    FreeObject,
    GetJournalEndpoint,
    GetSessionResponse,
    MockJournalResponse,
    PreflightRequest,
    PreflightRequestRequest,
    PreflightResponse,
    ProposalsRequest,
    ProposalsRequestResponse,
    ProposalsRequestResponseToolCallsItem,
    ProposalsResponse,
    ReceiptsRequest,
    ReceiptsRequestOutcome,
    ReceiptsResponse,
)


def main(base_url: str, api_key: str, control_token: str) -> dict[str, object]:
    """Create, preflight, propose, receipt, load; then reuse the proposal's prepared request."""
    api = AuthenticatedClient(base_url=base_url, token=api_key)
    control = AuthenticatedClient(base_url=base_url, token=control_token)

    created = create_session.sync_detailed(
        client=api,
        body=CreateSessionRequest(
            agent="refund-bot",
            session_id="generated-py",
            environment=Environment.PRODUCTION,
            holder_id="worker-a",
        ),
    )
    assert isinstance(created.parsed, CreateSessionResponse), created.content
    sid = created.parsed.session.session_id
    fence = created.parsed.lease.fence_token

    prepared = preflight.sync(
        sid,
        client=api,
        body=PreflightRequest(
            fence_token=fence,
            expected_state_version=0,
            request=PreflightRequestRequest(tools=["verify_customer", "issue_refund"]),
        ),
    )
    assert isinstance(prepared, PreflightResponse), prepared

    arguments = FreeObject.from_dict({"email": "ana@example.com"})
    call = ProposalsRequestResponseToolCallsItem(
        id="call-1", name="verify_customer", arguments=arguments
    )
    proposal = ProposalsRequest(
        prepared_request_id=prepared.prepared_request_id,
        fence_token=fence,
        response=ProposalsRequestResponse(tool_calls=[call]),
    )
    verdict = propose.sync(sid, client=api, body=proposal)
    assert isinstance(verdict, ProposalsResponse), verdict
    pending = verdict.calls[0].pending_call_id
    assert pending is not None

    receipt = submit_receipt.sync(
        sid,
        client=api,
        body=ReceiptsRequest(
            pending_call_id=pending,
            fence_token=fence,
            outcome=ReceiptsRequestOutcome.SUCCESS,
            output={"verified": True, "customer_id": "c-42"},
        ),
    )
    assert isinstance(receipt, ReceiptsResponse), receipt

    loaded = get_session.sync(sid, client=api)
    assert isinstance(loaded, GetSessionResponse), loaded

    reused = propose.sync_detailed(sid, client=api, body=proposal)
    assert isinstance(reused.parsed, ErrorEnvelope), reused.content

    journal = get_journal.sync(client=control, endpoint=GetJournalEndpoint.PROPOSALS)
    assert isinstance(journal, MockJournalResponse), journal

    return {
        "created": int(created.status_code),
        "decision": verdict.decision.value,
        "committed": receipt.committed,
        "state_version": loaded.session.state_version,
        "phase": loaded.session.phase.current,
        "conflict": int(reused.status_code),
        "code": reused.parsed.error.code,
        "request_id": reused.parsed.error.request_id,
        "journaled_proposals": [entry.status for entry in journal.entries],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3])))
