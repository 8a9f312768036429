"""What the checks need of one request: a compact note, kept apart from the journal's bodies.

A note holds only the few facts the client checks (PROTOCOL.md §7) and coverage read: what
the client sent (fence token, expected version, prepared request, pending call, the body's
bytes for "the same request"), what it was told (a readable answer saying the session is
killed or compromised, the prepared request and the tools narrowed away, the pending calls
it must receipt) and what the runtime did (committed or not), whatever the client then
received. Notes are made once per request, from the dicts the edge already holds (no JSON is
parsed on the request path), or from a journal entry's wire form for an offline check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SESSION_ANSWERS = frozenset(
    {"create_session", "get_session", "kill", "report_bypass", "tool_filter", "recover"}
)
"""Endpoints whose answer carries the session (`{"session": Session}`)."""
WORKFLOW_ANSWERS = frozenset({"get_workflow", "kill_workflow"})


@dataclass(slots=True)
class Note:
    """One request as the checks see it."""

    seq: int
    request_id: str
    endpoint: str | None
    session_id: str | None
    status: int | None  # what the client received (None: no answer)
    outcome: str
    error: str | None  # the envelope's code, in the answer the runtime or a rule gave
    readable: bool  # the client received an answer it can read (not dropped, malformed, 5xx)
    committed: bool  # the runtime handled it with a 2xx, whatever the client then received
    body: bytes  # the request body (for "the same request"); b"" without one
    reading_pending: bool = False  # a GET of the session with ?include=pending
    fence_token: Any = None
    expected_state_version: Any = None
    prepared_request_id: str | None = None
    pending_call_id: str | None = None
    tools: tuple[str, ...] = ()  # the tool calls of a proposal
    # what a readable answer told the client
    session_status: str | None = None  # "killed" | "compromised" | "active"
    killed_sessions: tuple[str, ...] = ()  # members shown killed in a workflow answer
    prepared_out: str | None = None  # a preflight's prepared request
    narrowed: tuple[str, ...] = ()  # tools a preflight narrowed away
    pending_out: tuple[str, ...] = ()  # pending calls a proposal registered
    # what the runtime answered (whether or not the client received it)
    unresolved: tuple[str, ...] = ()  # PENDING_CALLS_UNRESOLVED details.pending_call_ids
    pointer: str | None = None  # VALIDATION_FAILED: the first details.errors path (or the
    # first details.differences path of a REPLAY_MISMATCH)
    pointer_message: str | None = None
    reasons: tuple[str, ...] = ()  # reason codes of blocks in the answer
    killed_actor: str | None = None  # who killed the session, as an answer shows it
    decision: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _session_state(session: Any) -> tuple[str | None, str | None]:
    """("killed" | "compromised" | "active", killed actor) of a session view."""
    if not isinstance(session, dict):
        return None, None
    if session.get("status") == "killed":
        return "killed", _text(_get(session.get("killed"), "actor"))
    if session.get("authority_state") == "compromised":
        return "compromised", None
    return "active", None


def _reasons(answer: dict[str, Any]) -> tuple[str, ...]:
    """Reason codes of the blocks (enforced or not) in a preflight or proposal answer."""
    codes: list[str] = []
    if answer.get("decision") == "block":
        codes += [_text(_get(r, "code")) or "" for r in answer.get("reasons") or ()]
    for call in answer.get("calls") or ():
        if _get(call, "decision") == "block":
            codes += [_text(_get(r, "code")) or "" for r in call.get("reasons") or ()]
    return tuple(dict.fromkeys(code for code in codes if code))


def make_note(
    *,
    seq: int,
    request_id: str,
    endpoint: str | None,
    session_id: str | None,
    path: str,
    status: int | None,
    outcome: str,
    request: Any,
    body: bytes,
    answer: Any,
    delivered: Any,
    committed: bool,
) -> Note:
    """A note from what the edge holds: the parsed request, the runtime's answer, and what
    the client received (`delivered`: the body sent, or None/str when lost or malformed)."""
    error_doc = _get(answer, "error")
    error = _text(_get(error_doc, "code"))
    details = _get(error_doc, "details")
    readable = status is not None and status < 500 and not isinstance(delivered, str)
    if readable and delivered is not answer and isinstance(delivered, dict):
        # a scenario's raw answer: what the client read is that body
        error_doc = _get(delivered, "error")
        error = _text(_get(error_doc, "code"))
        details = _get(error_doc, "details")
    note = Note(
        seq, request_id, endpoint, session_id, status, outcome, error, readable, committed, body
    )
    if isinstance(request, dict):
        note.fence_token = request.get("fence_token")
        note.expected_state_version = request.get("expected_state_version")
        note.prepared_request_id = _text(request.get("prepared_request_id"))
        note.pending_call_id = _text(request.get("pending_call_id"))
        if endpoint == "proposals":
            calls = _get(request.get("response"), "tool_calls")
            names = (_text(_get(c, "name")) for c in calls) if isinstance(calls, list) else ()
            note.tools = tuple(n for n in names if n is not None)
    if endpoint == "get_session" and "include=pending" in path:
        note.reading_pending = True
    if error == "PENDING_CALLS_UNRESOLVED":
        ids = _get(details, "pending_call_ids")
        note.unresolved = tuple(i for i in ids if isinstance(i, str)) if ids else ()
    elif error == "VALIDATION_FAILED":
        errors = _get(details, "errors")
        first = errors[0] if isinstance(errors, list) and errors else None
        note.pointer = _text(_get(first, "path"))
        note.pointer_message = _text(_get(first, "message"))
    elif error == "SESSION_KILLED":
        note.killed_actor = _text(_get(_get(details, "killed"), "actor"))
    elif error == "REPLAY_MISMATCH":  # the first difference from the recorded request
        differences = _get(details, "differences")
        first = differences[0] if isinstance(differences, list) and differences else None
        note.pointer = _text(_get(first, "path"))
    if committed and readable and delivered is answer and isinstance(answer, dict):
        _answer_fields(endpoint, answer, note)  # the client read the runtime's own answer
    return note


def _answer_fields(endpoint: str | None, answer: dict[str, Any], note: Note) -> None:
    """What a handled 2xx answer says, by endpoint."""
    if endpoint in SESSION_ANSWERS:
        note.session_status, note.killed_actor = _session_state(answer.get("session"))
    elif endpoint in ("proposals", "receipts"):
        status = answer.get("session_status")
        note.session_status = status if status in ("killed", "active") else None
    elif endpoint in WORKFLOW_ANSWERS:
        members = _get(answer.get("workflow"), "sessions") or ()
        note.killed_sessions = tuple(
            sid
            for m in members
            if _get(m, "status") == "killed" and (sid := _text(_get(m, "session_id")))
        )
    if endpoint == "preflight":
        note.prepared_out = _text(answer.get("prepared_request_id"))
        narrowed = answer.get("narrowed") or ()
        note.narrowed = tuple(t for n in narrowed if (t := _text(_get(n, "tool"))))
        note.reasons = _reasons(answer)
        note.decision = _text(answer.get("decision"))
    elif endpoint == "proposals":
        calls = answer.get("calls") or ()
        note.pending_out = tuple(
            p for c in calls if (p := _text(_get(c, "pending_call_id"))) is not None
        )
        note.reasons = _reasons(answer)
        note.decision = _text(answer.get("decision"))


def note_from_wire(entry: dict[str, Any]) -> Note:
    """A note from a journal entry's wire form (GET /_mock/journal), for an offline check.

    The wire form says what the client received; `committed` (when present) says whether
    the runtime handled the request with a 2xx before a fault replaced its answer.
    """
    status = entry.get("status")
    outcome = str(entry.get("outcome") or "handled")
    response = entry.get("response_body")
    request = entry.get("request_body")
    committed = entry.get("committed")
    if not isinstance(committed, bool):
        committed = outcome == "handled" and isinstance(status, int) and 200 <= status < 300
    answer = response if outcome == "handled" or committed is False else None
    if answer is None and committed and outcome != "handled":
        answer = {}
    body = b"" if request is None else json.dumps(request, sort_keys=True).encode()
    return make_note(
        seq=int(entry.get("seq") or 0),
        request_id=str(entry.get("request_id") or ""),
        endpoint=_text(entry.get("endpoint")),
        session_id=_text(entry.get("session_id")),
        path=str(entry.get("path") or ""),
        status=status if isinstance(status, int) else None,
        outcome=outcome,
        request=request,
        body=body,
        answer=answer,
        delivered=response,
        committed=committed,
    )
