"""The SDK checker (PROTOCOL.md §7.1): findings on what the client did wrong.

The checker watches every journaled request as it is recorded (one compact `Note`, no
parsing: see notes.py), runs the units of misuse.py with what the client knew *before*
the request, then learns what the answer told it. It keeps its own small memory per
session (bounded: see `MEMORY_CAP`), so findings survive requests leaving a bounded
journal (`journal_limit`): a finding names its requests by id even when the journal no
longer holds them. Reading findings only sorts what was found and sweeps the pending calls
still waiting for a receipt, so it is fast whatever the journal's length.

Findings are deterministic: the same requests in the same order give the same findings,
ordered by the first request involved (then the last, then the rule name).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from .journal import Draft, Entry
from .misuse import (
    RECEIPT_MISSING,
    REFRESHES,
    UNITS,
    WRITES,
    Finding,
    Memory,
    Told,
    Unit,
    sid,
)
from .notes import Note, make_note

SEVERITIES = ("error", "warning")
MAX_FINDINGS = 10_000
"""The most findings kept (the first ones: they are ordered by their first request)."""
RULES: tuple[Unit, ...] = (*UNITS, RECEIPT_MISSING)
"""Every rule of the §7.1 table."""

LEARNS = frozenset(
    {
        "create_session",
        "get_session",
        "preflight",
        "proposals",
        "receipts",
        "kill",
        "report_bypass",
        "tool_filter",
        "recover",
        "get_workflow",
        "kill_workflow",
    }
)
"""Endpoints whose 2xx answer can teach the client something the checks remember."""

PendingStatus = Callable[[str, str], "str | None"]
"""(session id, pending call id) -> the call's status in the world, or None if unknown."""


class Checker:
    """Findings of one world (a reset or a scenario load starts a new checker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memories: dict[str, Memory] = {}
        self._findings: list[Finding] = []
        self.checked = 0

    # -- watching requests -------------------------------------------------------------------

    def observe_entry(self, entry: Entry, draft: Draft) -> Note:
        """Check one journaled request (the journal calls this for each entry, in order)."""
        note = note_of(entry, draft)
        self.observe(note)
        return note

    def observe(self, note: Note) -> None:
        """Check one request, then learn what its answer told the client."""
        if note.endpoint is None:
            return
        with self._lock:
            self.checked += 1
            memory = self._memory(note.session_id, note.endpoint)
            status = note.status
            if (
                status is None
                or status >= 400
                or memory.run is not None
                or memory.killed is not None
                or memory.compromised is not None
                or memory.stale is not None
                or memory.fence is not None
                or memory.lost is not None
                or note.endpoint == "proposals"
            ):
                for unit in UNITS:
                    unit.check(note, memory, self._emit)
            # else: a 2xx with nothing to compare it with: no unit can find anything
            self._learn(note, memory)

    def _memory(self, session_id: str | None, endpoint: str) -> Memory:
        key = session_id if session_id is not None else f"<{endpoint}>"
        memory = self._memories.get(key)
        if memory is None:
            memory = self._memories[key] = Memory()
        return memory

    def _emit(self, unit: Unit, note: Note, earlier: list[Told], message: str) -> Finding:
        finding = Finding(
            rule=unit.name,
            severity=unit.severity,
            session_id=note.session_id,
            request_ids=[t.request_id for t in earlier] + [note.request_id],
            seqs=[t.seq for t in earlier] + [note.seq],
            message=message,
            protocol=unit.protocol,
            hint=unit.hint,
        )
        if len(self._findings) < MAX_FINDINGS:
            self._findings.append(finding)
        return finding

    def _learn(self, note: Note, memory: Memory) -> None:
        """What this request's answer told the client, and what the runtime did."""
        endpoint, error, readable = note.endpoint, note.error, note.readable
        if endpoint in WRITES:  # each refusal mark is checked against the next write only
            memory.stale = None
            if note.fence_token is not None:
                memory.fence = None
        if readable and (error is not None or endpoint in LEARNS):
            self._learn_read(note, memory, Told.of(note))
        if endpoint == "receipts" and note.pending_call_id is not None:
            if note.committed or error == "RECEIPT_CONFLICT":
                memory.pending.pop(note.pending_call_id, None)
            if note.committed and note.pending_call_id not in memory.receipted:
                memory.receipted.put(note.pending_call_id, Told.of(note))
        if memory.lost is not None and endpoint in WRITES:
            memory.lost = None  # repeated (fine) or reported: either way, the mark is spent
        if endpoint in WRITES and note.committed and not readable:
            memory.lost = Told.of(note)

    def _learn_read(self, note: Note, memory: Memory, told: Told) -> None:
        endpoint, error = note.endpoint, note.error
        if memory.killed is None and (error == "SESSION_KILLED" or note.session_status == "killed"):
            memory.killed = told
        compromised = error == "SESSION_COMPROMISED" or note.session_status == "compromised"
        if endpoint == "report_bypass" and note.committed:
            compromised = True
        if compromised and memory.compromised is None:
            memory.compromised = told
        for other in note.killed_sessions:
            member = self._memory(other, endpoint or "")
            if member.killed is None:
                member.killed = told
        if error == "STALE_STATE_VERSION":
            memory.stale = told
        if error in ("FENCE_MISMATCH", "LEASE_EXPIRED"):
            memory.fence = told
        if note.committed and endpoint in REFRESHES:
            memory.stale = memory.fence = None
        lost = memory.lost
        reads = endpoint == "get_session" and note.committed
        if lost is not None and reads and (lost.endpoint != "proposals" or note.reading_pending):
            memory.lost = None
        if note.committed and endpoint == "proposals" and note.prepared_request_id:
            memory.consumed.put(note.prepared_request_id, told)
        if note.prepared_out is not None and note.narrowed:
            memory.offered[note.prepared_out] = (told, note.narrowed)
            if len(memory.offered) > 256:
                memory.offered.pop(next(iter(memory.offered)))
        for pending in note.pending_out:
            memory.pending.put(pending, told)

    # -- reading -----------------------------------------------------------------------------

    def findings(
        self,
        *,
        session_id: str | None = None,
        severity: str | None = None,
        pending_status: PendingStatus | None = None,
    ) -> list[Finding]:
        """Every finding so far (plus receipt-missing for calls still pending), in order."""
        with self._lock:
            found = list(self._findings) + self._receipts_missing(pending_status)
        found.sort(key=lambda f: (f.seqs[0], f.seqs[-1], f.rule))
        return [
            f
            for f in found
            if (session_id is None or f.session_id == session_id)
            and (severity is None or f.severity == severity)
        ]

    def _receipts_missing(self, pending_status: PendingStatus | None) -> list[Finding]:
        unit = RECEIPT_MISSING
        missing: list[Finding] = []
        for key, memory in self._memories.items():
            for pending, told in memory.pending.items():
                if pending_status is not None:
                    if pending_status(key, pending) != "pending":
                        continue
                elif memory.killed is not None:
                    continue
                missing.append(
                    Finding(
                        rule=unit.name,
                        severity=unit.severity,
                        session_id=key,
                        request_ids=[told.request_id],
                        seqs=[told.seq],
                        message=(
                            f"Pending call {pending} of session {key!r}, allowed by proposal "
                            f"{told.request_id}, never got a receipt."
                        ),
                        protocol=unit.protocol,
                        hint=unit.hint,
                    )
                )
        return missing


def note_of(entry: Entry, draft: Draft) -> Note:
    """The note of a request the edge just journaled (from the dicts it already holds)."""
    response = draft.response_body
    delivered = draft.answer if isinstance(response, (bytes, bytearray)) else response
    raw = draft.request_body
    return make_note(
        seq=entry.seq,
        request_id=entry.request_id,
        endpoint=entry.endpoint,
        session_id=entry.session_id,
        path=entry.path,
        status=entry.status,
        outcome=entry.outcome,
        request=draft.request,
        body=raw if isinstance(raw, bytes) else b"",
        answer=draft.answer,
        delivered=delivered,
        committed=draft.committed,
    )


def check_entries(entries: Iterable[Any]) -> tuple[Checker, list[Note]]:
    """Findings of a journal given in its wire form (an offline check of a saved run)."""
    from .notes import note_from_wire

    checker = Checker()
    notes = [note_from_wire(entry) for entry in entries if isinstance(entry, dict)]
    for note in notes:
        checker.observe(note)
    return checker, notes


__all__ = ["RULES", "SEVERITIES", "Checker", "Finding", "check_entries", "note_of", "sid"]
