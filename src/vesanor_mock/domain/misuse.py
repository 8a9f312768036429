"""The client checks of PROTOCOL.md §7.1: one small unit per rule of the table.

Each unit has its stable `name`, `severity`, the PROTOCOL section it enforces and a `hint`
(what a correct SDK does), and looks at one request at a time with the session's `Memory`:
what the client had been told *before* this request. The checker updates the memory after
every unit has looked, so the request that first learns of a kill, a stale version or a
rotated fence is never itself a misuse; continuing as if nothing happened is.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .notes import Note

WRITES = frozenset(
    {
        "preflight",
        "proposals",
        "receipts",
        "tool_filter",
        "recover",
        "offer_handoff",
        "report_bypass",
    }
)
"""Writes on a session that a dead session refuses (labels and kill are allowed)."""
REFRESHES = frozenset({"get_session", "create_session", "recover"})
"""Answers that carry the session's current version and lease: a reload."""
MEMORY_CAP = 256
"""Per session, the most prepared requests, pending calls and receipts remembered."""


@dataclass
class Finding:
    """One misuse: the rule, the session, the requests that show it (the offending last)."""

    rule: str
    severity: str
    session_id: str | None
    request_ids: list[str]
    seqs: list[int]
    message: str
    protocol: str
    hint: str

    def to_dict(self) -> dict[str, object]:
        """The wire form of §7.1."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "session_id": self.session_id,
            "request_ids": list(self.request_ids),
            "message": self.message,
            "protocol": self.protocol,
            "hint": self.hint,
        }


@dataclass(slots=True)
class Told:
    """A request whose answer taught the client something, and what it sent."""

    request_id: str
    seq: int
    endpoint: str | None
    fence_token: object = None
    expected_state_version: object = None
    prepared_request_id: str | None = None
    body: bytes = b""

    @staticmethod
    def of(note: Note) -> Told:
        """The parts of a request later checks compare with."""
        return Told(
            note.request_id,
            note.seq,
            note.endpoint,
            note.fence_token,
            note.expected_state_version,
            note.prepared_request_id,
            note.body,
        )


class Bounded(OrderedDict[str, Told]):
    """A map that forgets its oldest keys past MEMORY_CAP."""

    def put(self, key: str, value: Told) -> None:
        """Remember `key`, forgetting the oldest key when full."""
        self[key] = value
        if len(self) > MEMORY_CAP:
            self.popitem(last=False)


@dataclass
class Run:
    """Consecutive identical failing requests (retry-storm)."""

    key: tuple[object, ...]
    first: list[Told]
    last: Told
    count: int
    finding: Finding | None = None


@dataclass
class Memory:
    """What the client had been told about one session, before the request at hand."""

    killed: Told | None = None
    compromised: Told | None = None
    stale: Told | None = None
    fence: Told | None = None
    lost: Told | None = None
    kill_reported: bool = False
    compromise_reported: bool = False
    consumed: Bounded = field(default_factory=Bounded)  # prepared request -> its proposal
    offered: dict[str, tuple[Told, tuple[str, ...]]] = field(default_factory=dict)
    pending: Bounded = field(default_factory=Bounded)  # pending call -> its proposal
    receipted: Bounded = field(default_factory=Bounded)  # pending call -> its first receipt
    run: Run | None = None


Emit = Callable[["Unit", Note, list[Told], str], Finding]


def sid(note: Note) -> str:
    """The session a message names."""
    return repr(note.session_id) if note.session_id is not None else "(none)"


class Unit:
    """One rule of the table; `check` reports the request's misuse, if any."""

    name = ""
    severity = "error"
    protocol = ""
    hint = ""

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        """Look at one request with what was known before it."""


class InvalidRequest(Unit):
    """`invalid-request`: a body or query the schemas refuse."""

    name = "invalid-request"
    protocol = "§1"
    hint = (
        "Build requests from the published schemas (GET /openapi.json) and validate them "
        "before sending; never send a body the API must refuse."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        if note.outcome not in ("refused", "handled"):
            return
        if note.status in (400, 415) or note.error == "VALIDATION_FAILED":
            where = ""
            if note.pointer is not None:
                where = f" at {note.pointer or '/'}"
                if note.pointer_message:
                    where += f" ({note.pointer_message})"
            what = note.error or str(note.status)
            emit(
                self,
                note,
                [],
                f"{note.endpoint or 'the'} request {note.request_id} for session {sid(note)} "
                f"was refused with {what}{where}.",
            )


class WriteAfterKill(Unit):
    """`write-after-kill`: a write to a session the client knew was killed."""

    name = "write-after-kill"
    protocol = "§3.9"
    hint = (
        "Once any answer says the session is killed (409 SESSION_KILLED, status or "
        "session_status 'killed'), stop: no preflight, proposal, receipt, filter, recover "
        "or handoff for it. Start a new session if the work must go on."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        told = memory.killed
        if told is not None and note.endpoint in WRITES and not memory.kill_reported:
            emit(
                self,
                note,
                [told],
                f"Session {sid(note)} was killed (the client learned it from {told.endpoint} "
                f"{told.request_id}), yet it sent {note.endpoint} {note.request_id} to it.",
            )
            memory.kill_reported = True  # one finding per session: the first such write


class WriteAfterCompromise(Unit):
    """`write-after-compromise`: a preflight or proposal on a compromised session."""

    name = "write-after-compromise"
    protocol = "§3.8"
    hint = (
        "After a bypass report or 409 SESSION_COMPROMISED the session has lost its authority: "
        "stop preflights and proposals (receipts for calls already run and labels are fine)."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        told = memory.compromised
        if (
            told is not None
            and note.endpoint in ("preflight", "proposals")
            and not memory.compromise_reported
        ):
            emit(
                self,
                note,
                [told],
                f"Session {sid(note)} was compromised (the client learned it from "
                f"{told.endpoint} {told.request_id}), yet it sent {note.endpoint} "
                f"{note.request_id}.",
            )
            memory.compromise_reported = True


class StaleRetry(Unit):
    """`stale-retry`: the same stale version or prepared request again, without a reload."""

    name = "stale-retry"
    protocol = "§2.2"
    hint = (
        "On 409 STALE_STATE_VERSION, reload the session (GET) and start again from its "
        "current state_version with a new preflight; never resend the stale version or the "
        "stale prepared request."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        told = memory.stale
        if told is None or note.endpoint not in WRITES:
            return
        same_version = (
            told.expected_state_version is not None
            and note.expected_state_version == told.expected_state_version
        )
        same_prepared = (
            told.prepared_request_id is not None
            and note.prepared_request_id == told.prepared_request_id
        )
        if same_version or same_prepared:
            what = (
                f"expected_state_version {told.expected_state_version}"
                if same_version
                else f"prepared request {told.prepared_request_id}"
            )
            emit(
                self,
                note,
                [told],
                f"After 409 STALE_STATE_VERSION on {told.endpoint} {told.request_id}, "
                f"{note.endpoint} {note.request_id} for session {sid(note)} reused the same "
                f"{what} without reloading the session.",
            )


class FenceRetry(Unit):
    """`fence-retry`: the same refused fence token again, without a recover or a GET."""

    name = "fence-retry"
    protocol = "§2.3"
    hint = (
        "On 409 FENCE_MISMATCH or LEASE_EXPIRED, another worker may hold the session: "
        "reload it (GET) or take the lease with recover, and write only with the fence "
        "token you then hold."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        told = memory.fence
        if told is None or note.endpoint not in WRITES or note.fence_token is None:
            return
        if note.fence_token == told.fence_token:
            emit(
                self,
                note,
                [told],
                f"After {told.endpoint} {told.request_id} was refused for its fence, "
                f"{note.endpoint} {note.request_id} for session {sid(note)} sent the same "
                f"fence_token {told.fence_token} without a recover or a GET in between.",
            )


class PreparedReuse(Unit):
    """`prepared-reuse`: a proposal for a prepared request the client itself consumed."""

    name = "prepared-reuse"
    protocol = "§3.3"
    hint = (
        "A prepared request is single-use: each proposal needs its own preflight. Keep the "
        "prepared_request_id with the model call it was made for and drop it once proposed."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        prepared = note.prepared_request_id
        if note.endpoint != "proposals" or prepared is None:
            return
        told = memory.consumed.get(prepared)
        if told is not None:
            emit(
                self,
                note,
                [told],
                f"Proposal {note.request_id} for session {sid(note)} reused prepared request "
                f"{prepared}, already consumed by proposal {told.request_id}.",
            )


class UnresolvedBeforePreflight(Unit):
    """`unresolved-before-preflight`: a preflight while allowed calls wait for receipts."""

    name = "unresolved-before-preflight"
    protocol = "§3.3"
    hint = (
        "Send a receipt for every pending call a proposal registered (success, error or "
        "timeout) before the next preflight."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        if note.endpoint != "preflight" or note.error != "PENDING_CALLS_UNRESOLVED":
            return
        waiting = [pc for pc in note.unresolved if pc in memory.pending]
        if not waiting:
            return  # the client was never told of these calls (a lost proposal answer)
        told = list({t.request_id: t for t in (memory.pending[pc] for pc in waiting)}.values())
        emit(
            self,
            note,
            told,
            f"Preflight {note.request_id} for session {sid(note)} came while pending "
            f"call(s) {', '.join(waiting)} still waited for a receipt.",
        )


class ReceiptConflict(Unit):
    """`receipt-conflict`: a second, different receipt for one pending call."""

    name = "receipt-conflict"
    protocol = "§3.5"
    hint = (
        "Send one receipt per pending call; retry it only with the very same body (the same "
        "receipt again returns the first answer)."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        if note.endpoint != "receipts" or note.error != "RECEIPT_CONFLICT":
            return
        first = memory.receipted.get(note.pending_call_id or "")
        emit(
            self,
            note,
            [first] if first is not None else [],
            f"Receipt {note.request_id} for pending call {note.pending_call_id} of session "
            f"{sid(note)} differs from the receipt already recorded"
            + (f" ({first.request_id})." if first is not None else "."),
        )


class RetryWithoutReconcile(Unit):
    """`retry-without-reconcile`: a different write after a lost answer to a committed one."""

    name = "retry-without-reconcile"
    protocol = "§7.1"
    hint = (
        "When an answer is lost (dropped connection, unreadable body, 5xx), the write may have "
        "happened: repeat the very same request, or read the session first (GET, with "
        "?include=pending after a proposal) before doing anything else."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        lost = memory.lost
        if lost is None or note.endpoint not in WRITES:
            return
        if note.endpoint == lost.endpoint and note.body == lost.body:
            return
        emit(
            self,
            note,
            [lost],
            f"The answer to {lost.endpoint} {lost.request_id} for session {sid(note)} was lost "
            f"after the mock committed it, and the client sent {note.endpoint} "
            f"{note.request_id} without reading the session or repeating the request.",
        )


class CallNotOffered(Unit):
    """`call-not-offered`: a proposal calling a tool its preflight narrowed away."""

    name = "call-not-offered"
    severity = "warning"
    protocol = "§3.3"
    hint = (
        "Offer the model only the preflight's visible_tools; a tool listed in narrowed must "
        "not reach the model, so it can never be proposed."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        if note.endpoint != "proposals" or note.prepared_request_id is None:
            return
        offered = memory.offered.get(note.prepared_request_id)
        if offered is None:
            return
        told, narrowed = offered
        hidden = [tool for tool in dict.fromkeys(note.tools) if tool in narrowed]
        if hidden:
            emit(
                self,
                note,
                [told],
                f"Proposal {note.request_id} for session {sid(note)} calls "
                f"{', '.join(hidden)}, which preflight {told.request_id} narrowed away.",
            )


class RetryStorm(Unit):
    """`retry-storm`: the same failing request 4 or more times in a row."""

    name = "retry-storm"
    severity = "warning"
    protocol = "§7.1"
    hint = (
        "Do not resend a request that failed with the same error: read the error code, "
        "change what it names (reload, recover, fix the body) or back off and give up."
    )
    THRESHOLD = 4

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        failing = note.status is not None and note.status >= 400
        if not failing:
            memory.run = None
            return
        key = (note.endpoint, note.session_id, note.body, note.status, note.error)
        run = memory.run
        if run is None or run.key != key:
            memory.run = Run(key, [Told.of(note)], Told.of(note), 1)
            return
        run.count += 1
        run.last = Told.of(note)
        if len(run.first) < self.THRESHOLD - 1:
            run.first.append(run.last)
        if run.count < self.THRESHOLD:
            return
        message = (
            f"The client sent the same {note.endpoint} request for session {sid(note)} "
            f"{run.count} times in a row, each failing with {note.error or note.status} "
            f"(last {note.request_id})."
        )
        if run.finding is None:
            run.finding = emit(self, note, run.first, message)
        else:  # the same run goes on: the first requests and the latest one
            run.finding.request_ids = [t.request_id for t in run.first] + [note.request_id]
            run.finding.seqs = [t.seq for t in run.first] + [note.seq]
            run.finding.message = message


class ReceiptMissing(Unit):
    """`receipt-missing`: an allowed pending call left without a receipt (found on reading)."""

    name = "receipt-missing"
    severity = "warning"
    protocol = "§3.5"
    hint = (
        "Every pending call a proposal registered needs one receipt (outcome success, error "
        "or timeout) once the tool ran or was abandoned."
    )


class ReplayMismatch(Unit):
    """`replay-mismatch`: under replay, a request that is not the next one recorded."""

    name = "replay-mismatch"
    protocol = "§9"
    hint = (
        "A replay answers only the requests that were recorded, in order, per session: send "
        "the same requests as the recorded run (same bodies, the ids and fence tokens the "
        "answers gave), or record again if the SDK changed on purpose."
    )

    def check(self, note: Note, memory: Memory, emit: Emit) -> None:
        if note.error != "REPLAY_MISMATCH":
            return
        where = f" (first difference at {note.pointer or '/'})" if note.pointer is not None else ""
        emit(
            self,
            note,
            [],
            f"{note.endpoint or 'the'} request {note.request_id} for session {sid(note)} is not "
            f"the next request the recording holds for it{where}.",
        )


RECEIPT_MISSING = ReceiptMissing()

UNITS: tuple[Unit, ...] = (
    InvalidRequest(),
    WriteAfterKill(),
    WriteAfterCompromise(),
    StaleRetry(),
    FenceRetry(),
    PreparedReuse(),
    UnresolvedBeforePreflight(),
    ReceiptConflict(),
    RetryWithoutReconcile(),
    CallNotOffered(),
    RetryStorm(),
    ReplayMismatch(),
)
"""The units that judge one request, in the order of the table (receipt-missing is found
when findings are read, from the pending calls still waiting)."""
