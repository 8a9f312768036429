"""The one seam where record and replay take the runtime's place (PROTOCOL §9).

`MockService.handle` hands an `/api/v1` request to its `Alternate`, when it has one,
instead of running it on the world. An Alternate answers from somewhere else (an upstream,
a recording) but keeps what every request gets: a request id, one journal entry (so
findings and the dashboard see it) and one access-log line.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..domain.journal import Draft
from ..errors import ApiError, InternalError
from .accesslog import log_entry
from .api import Operation
from .edge import envelope, error_response

if TYPE_CHECKING:
    from .app import MockService


class Incoming:
    """What an alternate needs of a request: path, query, key, type and body bytes."""

    def __init__(self, request: Request, raw: bytes) -> None:
        scope = request.scope
        self.method = request.method
        self.path = str(scope["path"])
        self.query_string = bytes(scope.get("query_string", b"")).decode("latin-1")
        self.query = request.query_params.multi_items() if self.query_string else []
        self.authorization = ",".join(request.headers.getlist("authorization")) or None
        self.content_type = request.headers.get("content-type")
        self.headers = request.headers
        self.raw = raw

    def body(self) -> tuple[Any, str | None]:
        """(JSON body or None, text of a body that is not JSON or None)."""
        if not self.raw.strip():
            return None, None
        text = self.raw.decode("utf-8", "replace")
        try:
            return json.loads(text), None
        except ValueError:
            return None, text


class Alternate:
    """Answers `/api/v1` requests in the runtime's place; subclasses define `answer`."""

    async def handle(self, service: MockService, request: Request, op: Operation) -> Response:
        """Answer one request and journal it."""
        world = service.world
        started = time.perf_counter()
        query = request.scope.get("query_string", b"")
        path = request.scope["path"] + (f"?{query.decode('latin-1')}" if query else "")
        draft = Draft(
            at=world.clock.now_iso(),
            request_id=world.ids.request_id(),
            method=request.method,
            path=path,
            endpoint=op.name,
            session_id=request.path_params.get("sid"),
        )
        try:
            response = await self.answer(service, request, op, draft)
        except ApiError as error:
            response = self.error(draft, error, "refused")
        except Exception:  # a bug in the mock: the envelope, and the harness raises it later
            service.record_server_error(traceback.format_exc())
            response = self.error(draft, InternalError("internal error in vesanor-mock"), "handled")
        log_entry(world.journal.record(draft, (time.perf_counter() - started) * 1000))
        return response

    async def answer(
        self, service: MockService, request: Request, op: Operation, draft: Draft
    ) -> Response:
        """The answer to one request; fill in the draft."""
        raise NotImplementedError

    @staticmethod
    def error(draft: Draft, error: ApiError, outcome: str) -> Response:
        """An answer in the envelope, journaled as such."""
        draft.outcome = outcome
        draft.status, draft.error = error.status, error.code
        draft.response_body = draft.answer = envelope(error, draft.request_id)
        return error_response(error, draft.request_id)


def journal_body(raw: bytes) -> Any:
    """A body as the journal keeps it: the JSON bytes, or the text of anything else."""
    if not raw.strip():
        return None
    try:
        json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
    return raw


def error_code(body: Any) -> str | None:
    """The `error.code` of an answer in the envelope, if it is one."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
