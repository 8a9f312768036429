"""One `/api/v1` request, end to end: admit, match rules, handle, apply faults, journal it.

Order: authenticate, read and validate the body (a failure here is `refused`: no rule
sees it); count the request against the rules; apply the fired state effects (clock,
lease, compromise, kill); wait `delay_ms`; answer in the runtime's place if a rule says
so (`raw` or `dropped`); else call the runtime, with forced blocks for proposals
(`handled`); then the after-commit faults. The edge decides nothing itself: rules.py
decides what fires, effects.py changes state, this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..domain import effects
from ..domain.journal import Draft
from ..domain.rules import Effects, Facts, Verdict
from ..domain.world import World
from ..errors import ApiError, ClientAborted, FieldError, InternalError, ValidationFailed
from ..schemas import SchemaRegistry
from .accesslog import log_entry, shown_path
from .api import Operation, Result
from .edge import (
    bearer_token,
    check_media_type,
    dumps,
    envelope,
    error_response,
    json_bytes_response,
    parse_json,
    read_body,
    require_object,
    unauthorized,
)
from .faults import MALFORMED_BODY, DropConnection, malformed_response, raw_response

log = logging.getLogger("vesanor_mock")


@dataclass
class Admitted:
    """A request that passed authentication and validation."""

    tenant: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]


class Exchange:
    """Runs one API request on one world and records it in the world's journal."""

    def __init__(
        self,
        world: World,
        request: Request,
        op: Operation,
        registry: SchemaRegistry,
        on_error: Callable[[str], None],
    ) -> None:
        self.world = world
        self.request = request
        self.op = op
        self.registry = registry
        self.on_error = on_error
        scope = request.scope
        path = shown_path(scope["path"], scope.get("query_string", b""), world.spec.api_keys)
        self.draft = Draft(
            at=world.clock.now_iso(),
            request_id=world.ids.request_id(),
            method=request.method,
            path=path,
            endpoint=op.name,
            session_id=request.path_params.get("sid"),
        )

    async def run(self) -> Response:
        """Answer the request (or drop it) and journal what happened."""
        started = time.perf_counter()
        response: Response | None = None
        try:
            response = await self._run()
        except ClientAborted:  # the client went away: nothing was done, nothing is answered
            response = self._aborted()
        except Exception:  # a bug outside the runtime call: the same envelope, and recorded
            response = self._internal_error(outcome=self.draft.outcome)
        finally:
            self.draft.size += len(getattr(response, "body", b""))
            log_entry(self.world.journal.record(self.draft, (time.perf_counter() - started) * 1000))
        return response

    async def _run(self) -> Response:
        try:
            admitted = await self._admit()
        except ApiError as error:
            return self._error(error)
        world, op = self.world, self.op
        facts = effects.facts_for(
            world.runtime, op.name, admitted.tenant, admitted.params, admitted.query, admitted.body
        )
        self.draft.session_id, self.draft.tools = facts.session_id, facts.tools
        verdict = world.rules.fire(facts)
        self.draft.rules_fired = tuple(verdict.ids)
        try:
            effects.apply_before(world.runtime, world.clock, facts, verdict)
        except ApiError as error:  # a rule's effect over a limit (the clock's end): refused
            return self._error(error, outcome="raw")
        delay = min(verdict.delay_ms, world.spec.options.max_delay_ms)
        if delay:
            await asyncio.sleep(delay / 1000)
        early = verdict.answer
        if early is not None:
            return self._early(early, facts)
        response = self._handle(admitted, verdict)
        if verdict.after_commit:
            response = await self._after_commit(response, facts, verdict)
        return response

    async def _admit(self) -> Admitted:
        """Authentication, query and body checks: what may happen before any rule."""
        request, op, spec = self.request, self.op, self.world.spec
        token = bearer_token(request)
        if token is None:
            raise unauthorized("missing or malformed Authorization: Bearer <api key> header")
        tenant = self.world.tenant_for(token)
        if tenant is None:
            raise unauthorized("unknown API key")
        self.draft.tenant = tenant
        query = _query(request, op, spec.validation)
        body: dict[str, Any] = {}
        if op.has_body:
            check_media_type(request)
            raw = await read_body(request, spec.max_body_bytes, spec.body_timeout_s)
            self.draft.size = len(raw)
            body = require_object(parse_json(raw))
            self.draft.request_body = raw if raw else body
            self.draft.request = body
            self.registry.validate_request(op.name, body, spec.validation)
        return Admitted(tenant, dict(request.path_params), query, body)

    def _handle(self, admitted: Admitted, verdict: Verdict) -> Response:
        """Call the runtime; its answer or error is the response."""
        self.draft.outcome = "handled"
        try:
            status, answer = _invoke(self.world, self.op, admitted, verdict)
        except ApiError as error:
            return self._error(error, outcome="handled")
        except Exception:  # a bug in the mock: answer the envelope and make the test fail
            return self._internal_error(outcome="handled")
        if self.op.name == "create_session" and isinstance(answer.get("session"), dict):
            self.draft.session_id = answer["session"].get("session_id")
        content = dumps(answer)
        found = answer.get("decision")
        self.draft.decision = found if isinstance(found, str) else None
        self.draft.status, self.draft.response_body = status, content
        self.draft.answer, self.draft.committed = answer, 200 <= status < 300
        return json_bytes_response(status, content, self.draft.request_id)

    def _early(self, then: Effects, facts: Facts) -> Response:
        """A rule answers in the runtime's place: a stale version, a raw answer, or nothing."""
        if then.answer == "stale_state_version":
            return self._error(effects.stale_conflict(self.world.runtime, facts), outcome="raw")
        return self._fault(then.answer, then)

    def _fault(self, answer: str | None, then: Any) -> Response:
        """A transport fault: drop, malformed body or a scripted answer."""
        draft = self.draft
        if answer == "drop_connection":
            draft.outcome, draft.status, draft.response_body = "dropped", None, None
            return DropConnection()
        draft.outcome = "raw"
        if answer == "malformed_body":
            draft.status, draft.response_body = 200, MALFORMED_BODY.decode("utf-8")
            return malformed_response(draft.request_id)
        respond = then.respond
        assert respond is not None
        draft.status = respond.status
        draft.response_body = respond.body if respond.has_body else None
        return raw_response(respond, draft.request_id)

    async def _after_commit(self, response: Response, facts: Facts, verdict: Verdict) -> Response:
        """The request was handled and committed; now its answer is delayed, replaced or lost."""
        effects.apply_after_commit(self.world.runtime, facts, verdict)
        late = verdict.after_commit
        budget = self.world.spec.options.max_delay_ms - min(
            verdict.delay_ms, self.world.spec.options.max_delay_ms
        )  # the cap is for the whole request, before and after commit
        delay = min(sum(a.delay_ms for a in late), budget)
        if delay:
            await asyncio.sleep(delay / 1000)
        fault = next((a for a in late if a.answer is not None), None)
        if fault is None:
            return response
        return self._fault(fault.answer, fault)

    def _aborted(self) -> Response:
        """Journal `aborted` (never a server error) and close what is left of the connection."""
        draft = self.draft
        draft.outcome, draft.status, draft.error = "aborted", None, None
        draft.request_body = draft.response_body = None
        return DropConnection(quiet=True)

    def _internal_error(self, outcome: str) -> Response:
        """500 INTERNAL_ERROR for the exception being handled; the harness raises it later."""
        text = traceback.format_exc()
        self.on_error(text)
        log.error("internal error on %s %s\n%s", self.op.method, self.draft.path, text)
        return self._error(InternalError("internal error in vesanor-mock"), outcome=outcome)

    def _error(self, error: ApiError, outcome: str = "refused") -> Response:
        self.draft.outcome = outcome
        self.draft.status, self.draft.error = error.status, error.code
        self.draft.response_body = self.draft.answer = envelope(error, self.draft.request_id)
        return error_response(error, self.draft.request_id)


def _invoke(world: World, op: Operation, admitted: Admitted, verdict: Verdict) -> Result:
    """One runtime call; a proposal gets the fired rules' forced blocks (check 10 of §4.2)."""
    if op.name == "proposals" and verdict.blocks:
        answer = world.runtime.propose(
            admitted.tenant, admitted.params["sid"], admitted.body, verdict.forced_block
        )
        return 200, answer
    return op.call(world.runtime, admitted.tenant, admitted.params, admitted.query, admitted.body)


def _query(request: Request, op: Operation, mode: str) -> dict[str, str]:
    """Query parameters, checked: errors point into them as if they were a JSON object.

    Like bodies: `strict` refuses unknown parameters, `off` checks only what the runtime
    needs (required parameters), the other modes also the allowed values.
    """
    query = dict(request.query_params) if request.scope.get("query_string") else {}
    known = {param.name for param in op.query}
    errors: list[FieldError] = []
    if mode == "strict":
        errors += [
            FieldError(f"/{name}", f"unknown query parameter {name!r}", "additionalProperties")
            for name in query
            if name not in known
        ]
    for param in op.query:
        value = query.get(param.name)
        if param.required and not value:
            message = f"query parameter {param.name!r} is required"
            errors.append(FieldError(f"/{param.name}", message, "required"))
        elif value is not None and param.choices and mode != "off" and value not in param.choices:
            expected = repr(param.choices[0]) if len(param.choices) == 1 else list(param.choices)
            message = (
                f"expected {'one of ' if len(param.choices) > 1 else ''}{expected}, got {value!r}"
            )
            errors.append(FieldError(f"/{param.name}", message, "enum"))
    if errors:
        raise ValidationFailed(errors)
    return query
