"""Hypothesis drives random sequences of operations on the domain and checks its invariants.

The machine calls the Runtime directly (no HTTP) on sessions and one workflow: create,
preflight, propose, receipt, tool filter, bypass, kill, recover, labels, offer, complete and
reclaim handoffs, workflow kill, clock advance. After every step it checks the invariants:
`state_version` equals the authoritative changes the model counted; fence tokens only rise;
a killed session stays killed; no pending call is committed twice; handoffs move only along
offered -> accepted -> completed, offered|accepted -> reclaimed; a final handoff never changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from vesanor_mock.clock import Clock
from vesanor_mock.domain.runtime import Runtime
from vesanor_mock.domain.sessionops import Context, Options
from vesanor_mock.errors import ApiError, Conflict
from vesanor_mock.ids import IdFactory

from .contracts_examples import refund_contract
from .test_api_workflows import compiled_workflow

TENANT = "default"
TOOLS = ("verify_customer", "lookup_order", "issue_refund", "escalate", "plan_work", "web_search")
ROLES = ("orchestrator", "researcher", "writer")
MOVES = {"offered": {"accepted", "completed", "reclaimed"}, "accepted": {"completed", "reclaimed"}}
FINAL = ("completed", "reclaimed")
MAX_SESSIONS = 6
RARELY = st.integers(0, 5)
"""Kills end a session's story: they fire on one draw in six, so stories get told."""


@dataclass
class Tracked:
    """What the model knows of one session."""

    fence: int = 1
    version: int = 0
    killed: bool = False
    compromised: bool = False
    prepared: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    committed: set[str] = field(default_factory=set)


def index(data: st.DataObject, items: list[Any] | tuple[Any, ...]) -> Any:
    """One of `items`, drawn by Hypothesis."""
    return data.draw(st.sampled_from(list(items)))


class DomainMachine(RuleBasedStateMachine):
    """A Runtime and a model of what each operation may change."""

    def __init__(self) -> None:
        super().__init__()
        options = Options(prepared_ttl_s=60, lease_ttl_s=600)
        self.clock = Clock()
        self.rt = Runtime(Context(self.clock, IdFactory(7), options))
        self.sessions: dict[str, Tracked] = {}
        self.handoffs: dict[str, list[str]] = {}
        self.workflow_id = ""
        self.completions: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.finals: dict[str, tuple[Any, ...]] = {}

    # -- helpers ----------------------------------------------------------------------------

    def session(self, sid: str) -> dict[str, Any]:
        """The session as a client would read it."""
        return self.rt.get_session(TENANT, sid, include_pending=True)["session"]

    def statuses(self) -> dict[str, str]:
        """Every session's status, to see who an operation killed."""
        return {sid: self.session(sid)["status"] for sid in self.sessions}

    def attempt(self, action: Any) -> dict[str, Any] | None:
        """Run one operation; count the kills it caused; a refusal answers None."""
        before = self.statuses()
        try:
            answer: dict[str, Any] | None = action()
        except ApiError:
            answer = None
        for sid, status in self.statuses().items():
            if status == "killed" and before.get(sid) == "active":
                tracked = self.sessions[sid]
                tracked.killed = True
                tracked.version += 1
        return answer

    def track(self, answer: dict[str, Any] | None) -> None:
        """Start tracking a created session."""
        if answer is not None:
            session = answer["session"]
            self.sessions.setdefault(session["session_id"], Tracked())

    def pick(self, data: st.DataObject, having: str = "") -> tuple[str, Tracked]:
        """A tracked session; with `having`, one whose list of that name is not empty."""
        sids = [sid for sid, t in self.sessions.items() if not having or getattr(t, having)]
        sid = index(data, sorted(sids or self.sessions))
        return sid, self.sessions[sid]

    def fence(self, data: st.DataObject, tracked: Tracked) -> int:
        """Usually the current fence token, sometimes a stale or a future one."""
        return int(index(data, [tracked.fence] * 4 + [tracked.fence - 1, tracked.fence + 1]))

    # -- sessions -------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """A standalone session with the refund contract, and a workflow's root."""
        contract = {"compiled_session": refund_contract()}
        _, created = self.rt.create_session(TENANT, {"agent": "refund-bot", "contract": contract})
        self.track(created)
        root = {"type": "root", "role": "orchestrator", "compiled_workflow": compiled_workflow()}
        _, created = self.rt.create_session(TENANT, {"agent": "orchestrator", "workflow": root})
        self.track(created)
        self.workflow_id = created["session"]["workflow"]["workflow_id"]

    @precondition(lambda self: len(self.sessions) < MAX_SESSIONS)
    @rule(environment=st.sampled_from(["development", "production"]), contract=st.booleans())
    def create_session(self, environment: str, contract: bool) -> None:
        body: dict[str, Any] = {"agent": "refund-bot", "environment": environment}
        if contract:
            body["contract"] = {"compiled_session": refund_contract()}
        self.track(self.attempt(lambda: self.rt.create_session(TENANT, body)[1]))

    @precondition(lambda self: len(self.sessions) < MAX_SESSIONS)
    @rule(data=st.data())
    def create_child(self, data: st.DataObject) -> None:
        workflow: dict[str, Any] = {
            "type": "child",
            "workflow_id": self.workflow_id,
            "role": index(data, ROLES[1:]),
        }
        if self.handoffs and data.draw(st.booleans()):
            workflow["handoff_id"] = index(data, sorted(self.handoffs))
        body = {"agent": "worker", "workflow": workflow}
        self.track(self.attempt(lambda: self.rt.create_session(TENANT, body)[1]))

    @rule(data=st.data())
    def preflight(self, data: st.DataObject) -> None:
        sid, tracked = self.pick(data)
        body: dict[str, Any] = {"fence_token": self.fence(data, tracked)}
        expected = index(data, [None, tracked.version, tracked.version - 1])
        if expected is not None:
            body["expected_state_version"] = expected
        answer = self.attempt(lambda: self.rt.preflight(TENANT, sid, body))
        if answer is not None:
            assert not (tracked.killed or tracked.compromised), "a dead session preflighted"
            tracked.prepared.append(answer["prepared_request_id"])

    @rule(data=st.data())
    def governed_step(self, data: st.DataObject) -> None:
        """Preflight with the current fence and version, propose on it, receipt the calls."""
        sid, tracked = self.pick(data)
        body = {"fence_token": tracked.fence, "expected_state_version": tracked.version}
        answer = self.attempt(lambda: self.rt.preflight(TENANT, sid, body))
        if answer is None:
            return
        tracked.prepared.append(answer["prepared_request_id"])
        before = len(tracked.pending)
        self.propose(data, sid, fresh=True, tools=tuple(answer["visible_tools"]))
        for pending in tracked.pending[before:]:
            if data.draw(RARELY):
                self.send_receipt(data, sid, pending)

    @rule(data=st.data())
    def propose_again(self, data: st.DataObject) -> None:
        """A proposal on any prepared request, fresh, used, stale or expired."""
        self.propose(data, self.pick(data, "prepared")[0], fresh=False)

    def propose(
        self, data: st.DataObject, sid: str, fresh: bool, tools: tuple[str, ...] = ()
    ) -> None:
        """Propose one to three tool calls on a prepared request, mostly of visible tools."""
        tracked = self.sessions[sid]
        if not tracked.prepared:
            return
        choices = [*tools, *tools, *TOOLS]
        names = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3))
        calls = [
            {"id": f"c{i}", "name": name, "arguments": {"amount": 10 * i}}
            for i, name in enumerate(names)
        ]
        prepared = tracked.prepared[-1] if fresh else index(data, tracked.prepared)
        body: dict[str, Any] = {
            "prepared_request_id": prepared,
            "fence_token": tracked.fence if fresh else self.fence(data, tracked),
            "response": {"tool_calls": calls},
            "checkpoint_decisions": [{"tool_call_id": "c0", "approved": True}],
        }
        answer = self.attempt(lambda: self.rt.propose(TENANT, sid, body))
        if answer is not None:
            assert not (tracked.killed or tracked.compromised), "a dead session proposed"
            tracked.pending += [
                c["pending_call_id"] for c in answer["calls"] if c["pending_call_id"]
            ]

    @rule(data=st.data())
    def receipt(self, data: st.DataObject) -> None:
        """A late, repeated or conflicting receipt for any pending call."""
        sid, tracked = self.pick(data, "pending")
        if tracked.pending:
            self.send_receipt(data, sid, index(data, tracked.pending))

    def send_receipt(self, data: st.DataObject, sid: str, pending: str) -> None:
        """Report one call's outcome; a commit is one authoritative change, once."""
        tracked = self.sessions[sid]
        body = {
            "pending_call_id": pending,
            "fence_token": self.fence(data, tracked),
            "outcome": index(data, ["success", "success", "success", "error", "timeout"]),
            "output": {"verified": True},
            "evidence": {"kind": "ack", "acknowledged": data.draw(st.booleans())},
        }
        answer = self.attempt(lambda: self.rt.receipt(TENANT, sid, body))
        if answer is not None and answer["committed"] and pending not in tracked.committed:
            tracked.committed.add(pending)
            tracked.version += 1
            assert answer["state_version"] == tracked.version

    @rule(data=st.data(), deny=st.lists(st.sampled_from(TOOLS), max_size=2))
    def tool_filter(self, data: st.DataObject, deny: list[str]) -> None:
        sid, tracked = self.pick(data)
        body: dict[str, Any] = {"deny": deny}
        if data.draw(st.booleans()):
            body["fence_token"] = self.fence(data, tracked)
        if self.attempt(lambda: self.rt.set_tool_filter(TENANT, sid, body)) is not None:
            assert not (tracked.killed or tracked.compromised), "a dead session took a filter"
            tracked.version += 1

    @rule(data=st.data(), go=RARELY)
    def report_bypass(self, data: st.DataObject, go: int) -> None:
        if go:
            return
        sid, tracked = self.pick(data)
        if self.attempt(lambda: self.rt.report_bypass(TENANT, sid, {"provider": "x"})):
            assert not tracked.killed, "a killed session took a bypass report"
            if not tracked.compromised:
                tracked.compromised = True
                tracked.version += 1

    @rule(data=st.data(), go=RARELY)
    def kill(self, data: st.DataObject, go: int) -> None:
        if go:
            return
        sid, _ = self.pick(data)
        assert self.attempt(lambda: self.rt.kill(TENANT, sid, {"reason": "test"})) is not None

    @rule(data=st.data())
    def recover(self, data: st.DataObject) -> None:
        sid, tracked = self.pick(data)
        answer = self.attempt(lambda: self.rt.recover(TENANT, sid, {}))
        if answer is not None:
            assert not (tracked.killed or tracked.compromised), "a dead session recovered"
            assert answer["lease"]["fence_token"] == tracked.fence + 1
            tracked.fence += 1

    @rule(data=st.data(), key=st.sampled_from(["note", "step"]))
    def label(self, data: st.DataObject, key: str) -> None:
        sid, _ = self.pick(data)
        assert self.attempt(lambda: self.rt.add_label(TENANT, sid, {"key": key})) is not None

    # -- workflow and handoffs ------------------------------------------------------------

    @rule(data=st.data(), claims=st.lists(st.sampled_from(["doc", "db"]), max_size=1))
    def offer_handoff(self, data: st.DataObject, claims: list[str]) -> None:
        sid, tracked = self.pick(data)
        body: dict[str, Any] = {
            "to_role": index(data, ROLES[1:]),
            "fence_token": self.fence(data, tracked),
            "resource_claims": claims,
        }
        if data.draw(st.booleans()):
            body["ttl_s"] = 30
        answer = self.attempt(lambda: self.rt.offer_handoff(TENANT, sid, body))
        if answer is not None:
            handoff = answer["handoff"]
            assert handoff["status"] == "offered"
            self.handoffs[handoff["handoff_id"]] = ["offered"]

    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "failed"]))
    def complete_handoff(self, data: st.DataObject, outcome: str) -> None:
        if not self.handoffs:
            return
        hid = index(data, sorted(self.handoffs))
        body = {"outcome": outcome, "result": {"n": 1}}
        final = self.handoffs[hid][-1] in FINAL
        answer = self.attempt(lambda: self.rt.complete_handoff(TENANT, self.workflow_id, hid, body))
        first = self.completions.setdefault(hid, (body, answer)) if answer is not None else None
        if final and answer is not None:
            assert first is not None and first[0] == body, "a final handoff completed again"
            assert answer == first[1], "a repeated completion answered differently"

    @rule(data=st.data())
    def reclaim_handoff(self, data: st.DataObject) -> None:
        if not self.handoffs:
            return
        hid = index(data, sorted(self.handoffs))
        final = self.handoffs[hid][-1] in FINAL
        body = {"reason": "taken back"}
        answer = self.attempt(lambda: self.rt.reclaim_handoff(TENANT, self.workflow_id, hid, body))
        assert not (final and answer), "a final handoff was reclaimed"

    @rule(go=RARELY)
    def kill_workflow(self, go: int) -> None:
        if go:
            return
        answer = self.attempt(lambda: self.rt.kill_workflow(TENANT, self.workflow_id, {}))
        assert answer is not None

    @rule(seconds=st.sampled_from([1, 30, 61, 601]), go=RARELY)
    def advance_clock(self, seconds: int, go: int) -> None:
        """Time passes: prepared requests (60 s), handoffs (30 s), leases (600 s) expire."""
        if not go:
            self.clock.advance(seconds)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def sessions_keep_their_promises(self) -> None:
        for sid, tracked in self.sessions.items():
            session = self.session(sid)
            assert session["state_version"] == tracked.version, sid
            assert session["lease"]["fence_token"] == tracked.fence, sid
            if tracked.killed:
                assert session["status"] == "killed"
                assert session["authority_state"] == "killed"
            committed = [p for p in session["pending_calls"] if p["status"] == "committed"]
            assert {p["pending_call_id"] for p in committed} == tracked.committed
            assert session["counters"]["tool_calls"] == len(tracked.committed)
            receipts = [p["receipt_id"] for p in committed]
            assert len(set(receipts)) == len(receipts)

    @invariant()
    def handoffs_move_only_forward(self) -> None:
        if not self.workflow_id:
            return
        workflow = self.rt.get_workflow(TENANT, self.workflow_id)["workflow"]
        for handoff in workflow["handoffs"]:
            history = self.handoffs.setdefault(handoff["handoff_id"], [handoff["status"]])
            last, now = history[-1], handoff["status"]
            if now != last:
                assert now in MOVES.get(last, set()), f"{last} -> {now}"
                history.append(now)
            if now in FINAL:
                snapshot = (handoff["outcome"], handoff["result"], handoff["updated_at"])
                previous = self.finals.setdefault(handoff["handoff_id"], snapshot)
                assert previous == snapshot, "a final handoff changed"
            if workflow["status"] == "killed":
                assert now in FINAL


DomainMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestDomainInvariants = DomainMachine.TestCase


def test_a_killed_session_refuses_every_write_but_labels_and_kill() -> None:
    machine = DomainMachine()
    machine.start()
    sid = next(iter(machine.sessions))
    machine.rt.kill(TENANT, sid, {})
    refused = [
        lambda: machine.rt.preflight(TENANT, sid, {"fence_token": 1}),
        lambda: machine.rt.set_tool_filter(TENANT, sid, {}),
        lambda: machine.rt.report_bypass(TENANT, sid, {}),
        lambda: machine.rt.recover(TENANT, sid, {}),
    ]
    for action in refused:
        try:
            action()
        except Conflict as error:
            assert error.code == "SESSION_KILLED"
        else:
            raise AssertionError("a killed session took a write")
    machine.rt.add_label(TENANT, sid, {"key": "after"})
    assert machine.rt.kill(TENANT, sid, {})["session"]["killed"]["reason"] is None
