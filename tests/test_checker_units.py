"""Each client-check rule as a unit of the domain: notes in, exactly its finding out."""

from __future__ import annotations

from typing import Any

import pytest

from vesanor_mock.domain.checker import RULES, Checker
from vesanor_mock.domain.notes import Note, make_note

SID = "s-1"


class Run:
    """Feeds notes to a checker, numbering requests req_000001, ..."""

    def __init__(self) -> None:
        self.checker = Checker()
        self.seq = 0

    def send(
        self,
        endpoint: str,
        status: int | None = 200,
        request: dict[str, Any] | None = None,
        answer: Any = None,
        *,
        outcome: str = "handled",
        delivered: Any = "same",
        path: str = "",
        session_id: str | None = SID,
    ) -> str:
        self.seq += 1
        request = request or {}
        answer = {} if answer is None else answer
        committed = outcome != "refused" and status is not None and 200 <= status < 300
        if delivered == "same":
            delivered = answer
        note: Note = make_note(
            seq=self.seq,
            request_id=f"req_{self.seq:06d}",
            endpoint=endpoint,
            session_id=session_id,
            path=path,
            status=status if delivered is not None else None,
            outcome=outcome,
            request=request,
            body=repr(sorted(request.items())).encode(),
            answer=answer,
            delivered=delivered,
            committed=committed,
        )
        self.checker.observe(note)
        return note.request_id

    def lost(self, endpoint: str, request: dict[str, Any]) -> str:
        """A committed write whose answer was dropped."""
        return self.send(endpoint, 200, request, {}, outcome="dropped", delivered=None)

    def found(self) -> list[tuple[str, list[str]]]:
        return [(f.rule, f.request_ids) for f in self.checker.findings()]


def error(code: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": "m", "details": details, "request_id": "r"}}


def killed_session() -> dict[str, Any]:
    return {"session": {"status": "killed", "killed": {"actor": "api"}}}


@pytest.fixture
def run() -> Run:
    return Run()


def test_every_rule_has_a_name_severity_section_and_hint() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    table = ["invalid-request", "write-after-kill", "write-after-compromise", "stale-retry"]
    table += ["fence-retry", "prepared-reuse", "unresolved-before-preflight"]
    table += ["receipt-conflict", "retry-without-reconcile", "call-not-offered"]
    table += ["receipt-missing", "retry-storm"]
    assert set(table) <= set(names)
    for rule in RULES:
        assert rule.severity in ("error", "warning") and rule.protocol.startswith("§")
        assert rule.hint.endswith(".")


def test_invalid_request(run: Run) -> None:
    bad = error("VALIDATION_FAILED", errors=[{"path": "/fence_token", "message": "x"}])
    rid = run.send("preflight", 422, {"fence_token": "x"}, bad, outcome="refused")
    assert run.found() == [("invalid-request", [rid])]
    assert "/fence_token" in run.checker.findings()[0].message


def test_write_after_kill_is_the_write_after_the_answer_that_told(run: Run) -> None:
    first = run.send("preflight", 409, {"fence_token": 1}, error("SESSION_KILLED"))
    assert run.found() == []
    second = run.send("receipts", 409, {"fence_token": 1, "pending_call_id": "p"}, error("X"))
    run.send("preflight", 409, {"fence_token": 1}, error("SESSION_KILLED"))  # once per session
    assert run.found() == [("write-after-kill", [first, second])]


def test_a_kill_answer_that_never_arrived_teaches_nothing(run: Run) -> None:
    run.send("kill", 200, {}, killed_session(), outcome="dropped", delivered=None)
    run.send("preflight", 409, {"fence_token": 1}, error("SESSION_KILLED"))
    assert run.found() == []


def test_a_workflow_answer_tells_its_killed_members(run: Run) -> None:
    workflow = {"workflow": {"sessions": [{"session_id": SID, "status": "killed"}]}}
    told = run.send("kill_workflow", 200, {}, workflow, session_id=None)
    write = run.send("preflight", 409, {"fence_token": 1}, error("SESSION_KILLED"))
    assert run.found() == [("write-after-kill", [told, write])]


def test_write_after_compromise_only_for_preflight_and_proposals(run: Run) -> None:
    report = run.send("report_bypass", 200, {}, {"session": {"authority_state": "compromised"}})
    run.send("receipts", 200, {"pending_call_id": "p", "fence_token": 1}, {})
    write = run.send("proposals", 409, {"prepared_request_id": "prep"}, error("X"))
    assert run.found() == [("write-after-compromise", [report, write])]


def test_stale_retry_and_a_reload_between(run: Run) -> None:
    stale = run.send("preflight", 409, {"expected_state_version": 0}, error("STALE_STATE_VERSION"))
    again = run.send("preflight", 409, {"expected_state_version": 0}, error("STALE_STATE_VERSION"))
    assert run.found() == [("stale-retry", [stale, again])]
    run.send("get_session", 200, {}, {"session": {"status": "active"}})
    run.send("preflight", 200, {"expected_state_version": 0}, {})
    assert len(run.found()) == 1


def test_fence_retry_and_a_recover_between(run: Run) -> None:
    refused = run.send("preflight", 409, {"fence_token": 1}, error("FENCE_MISMATCH"))
    again = run.send("tool_filter", 409, {"fence_token": 1}, error("FENCE_MISMATCH"))
    assert run.found() == [("fence-retry", [refused, again])]
    run.send("recover", 200, {}, {"session": {"status": "active"}})
    run.send("preflight", 409, {"fence_token": 1}, error("FENCE_MISMATCH"))
    assert len(run.found()) == 1


def test_prepared_reuse_only_after_a_received_answer(run: Run) -> None:
    run.lost("proposals", {"prepared_request_id": "prep_1"})
    run.send("proposals", 409, {"prepared_request_id": "prep_1"}, error("X"))
    assert run.found() == []
    first = run.send("proposals", 200, {"prepared_request_id": "prep_2"}, {"calls": []})
    reuse = run.send("proposals", 409, {"prepared_request_id": "prep_2", "x": 1}, error("X"))
    assert run.found() == [("prepared-reuse", [first, reuse])]


def test_unresolved_before_preflight_names_the_proposal_that_told(run: Run) -> None:
    answer = {"calls": [{"pending_call_id": "pc_1", "decision": "allow"}]}
    proposal = run.send("proposals", 200, {"prepared_request_id": "p"}, answer)
    early = run.send(
        "preflight", 409, {}, error("PENDING_CALLS_UNRESOLVED", pending_call_ids=["pc_1"])
    )
    assert [f for f in run.found() if f[0] != "receipt-missing"] == [
        ("unresolved-before-preflight", [proposal, early])
    ]


def test_receipt_conflict_names_the_first_receipt(run: Run) -> None:
    first = run.send("receipts", 200, {"pending_call_id": "pc_1", "outcome": "success"}, {})
    other = run.send(
        "receipts", 409, {"pending_call_id": "pc_1", "outcome": "error"}, error("RECEIPT_CONFLICT")
    )
    assert run.found() == [("receipt-conflict", [first, other])]


def test_retry_without_reconcile_and_its_two_right_answers(run: Run) -> None:
    lost = run.lost("receipts", {"pending_call_id": "pc_1"})
    moved = run.send("preflight", 200, {"fence_token": 1}, {})
    assert run.found() == [("retry-without-reconcile", [lost, moved])]
    run.lost("receipts", {"pending_call_id": "pc_2"})
    run.send("receipts", 200, {"pending_call_id": "pc_2"}, {})  # the same again
    run.lost("proposals", {"prepared_request_id": "p"})
    run.send("get_session", 200, {}, {"session": {}}, path="/s?include=pending")
    run.send("preflight", 200, {"fence_token": 1}, {})
    assert len(run.found()) == 1


def test_call_not_offered(run: Run) -> None:
    prep = {"prepared_request_id": "prep_1", "narrowed": [{"tool": "refund"}]}
    told = run.send("preflight", 200, {}, prep)
    request = {"prepared_request_id": "prep_1", "response": {"tool_calls": [{"name": "refund"}]}}
    proposal = run.send("proposals", 200, request, {"calls": []})
    assert run.found() == [("call-not-offered", [told, proposal])]


def test_receipt_missing_until_receipted_unless_killed(run: Run) -> None:
    answer = {"calls": [{"pending_call_id": "pc_1"}]}
    proposal = run.send("proposals", 200, {"prepared_request_id": "p"}, answer)
    assert run.found() == [("receipt-missing", [proposal])]
    run.send("kill", 200, {}, killed_session())
    assert run.found() == []


def test_retry_storm_is_one_finding_per_run_of_repeats(run: Run) -> None:
    ids = [run.send("get_session", 404, {}, error("SESSION_NOT_FOUND")) for _ in range(6)]
    assert run.found() == [("retry-storm", [*ids[:3], ids[5]])]
    run.send("get_session", 200, {}, {"session": {}})
    more = [run.send("get_session", 404, {}, error("SESSION_NOT_FOUND")) for _ in range(4)]
    assert run.found()[1] == ("retry-storm", more)


def test_the_same_requests_give_the_same_findings_in_the_same_order() -> None:
    def story() -> list[tuple[str, list[str]]]:
        run = Run()
        run.send("kill", 200, {}, killed_session())
        run.send("preflight", 422, {"fence_token": "x"}, error("VALIDATION_FAILED", errors=[]))
        run.send("preflight", 409, {"fence_token": 1}, error("SESSION_KILLED"))
        return run.found()

    assert (
        story()
        == story()
        == [
            ("write-after-kill", ["req_000001", "req_000002"]),  # an invalid write is a write
            ("invalid-request", ["req_000002"]),
        ]
    )
