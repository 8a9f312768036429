"""Replay mode (PROTOCOL §9): answer `/api/v1` from a recording (see recording/replay.py).

Nothing is authenticated, validated or run here: the recording decides. A request that is
not the next one recorded for its lane answers `409 REPLAY_MISMATCH` (journaled like any
answer, so the client checks see it). The replay's position survives a reset of the
world: a recording spans a whole run (a test session resets the mock before every test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ..domain.journal import Draft
from ..errors import ReplayMismatch
from ..recording.format import Recording
from ..recording.replay import Replay
from .alternate import Alternate, Incoming, error_code, journal_body
from .api import Operation
from .edge import dumps, read_body

if TYPE_CHECKING:
    from .app import MockService


class Replayer(Alternate):
    """Answers from one recording; `replay` holds its position and bindings."""

    def __init__(self, recording: Recording, service: MockService) -> None:
        self.replay = Replay(recording, lambda: service.world.clock.now_iso(), service.spec.seed)

    async def answer(
        self, service: MockService, request: Request, op: Operation, draft: Draft
    ) -> Response:
        """The next recorded answer of the request's session, or 409 REPLAY_MISMATCH."""
        raw = await read_body(request, service.spec.max_body_bytes)
        incoming = Incoming(request, raw)
        draft.request_body, draft.size = journal_body(raw), len(raw)
        body, text = incoming.body()
        draft.request = body  # the client checks (PROTOCOL §7.1) read these three
        form = self.replay.request_form(
            incoming.method,
            incoming.path,
            incoming.query,
            incoming.authorization,
            incoming.content_type,
            body,
            text,
        )
        try:
            answer = self.replay.answer(form, draft.request_id)
        except ReplayMismatch as mismatch:
            return self.error(draft, mismatch, "handled")
        draft.outcome = "handled"
        content = dumps(answer.body) if answer.text is None else answer.text.encode("utf-8")
        if answer.text is None and answer.body is None:
            content = b""
        draft.status, draft.response_body = answer.status, journal_body(content)
        draft.answer, draft.committed = answer.body, 200 <= answer.status < 300
        draft.size += len(content)
        draft.error = error_code(answer.body) if answer.status >= 400 else None
        if op.name == "create_session" and isinstance(answer.body, dict):
            session = answer.body.get("session")
            if isinstance(session, dict) and isinstance(session.get("session_id"), str):
                draft.session_id = session["session_id"]
        decision = answer.body.get("decision") if isinstance(answer.body, dict) else None
        draft.decision = decision if isinstance(decision, str) else None
        response = Response(content, status_code=answer.status)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
        headers.append((b"content-length", str(len(content)).encode("latin-1")))
        response.raw_headers = headers
        return response
