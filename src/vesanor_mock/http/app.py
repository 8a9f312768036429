"""The Starlette app: `create_app(settings)` builds routes over one MockService; nothing global."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from ..config import Settings
from ..domain.coverage import Coverage
from ..domain.journal import Draft
from ..domain.sessionops import Options
from ..domain.world import World, WorldSpec, compile_plans
from ..errors import (
    ApiError,
    ClientAborted,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ScenarioError,
    ScenarioIssue,
)
from ..recording.format import load_recording
from ..scenarios import Scenario, load_scenario, load_scenario_text
from ..schemas import SchemaRegistry
from .accesslog import log_entry, shown_path
from .alternate import Alternate
from .api import API_PREFIX, OPERATION_TABLE, OPERATIONS, Operation
from .control import control_routes
from .edge import CLOSING_KEY, envelope, error_response
from .exchange import Exchange
from .faults import ConnectionDropped, DropConnection, closing_check, guard
from .replaying import Replayer
from .ui import ui_routes

ENCODED_SLASH = b"%2f"
log = logging.getLogger("vesanor_mock")


class MockService:
    """Everything one running mock holds: settings, compiled schemas, the scenario, the world.

    `base` is the spec the settings describe; a scenario states what it changes. Loading
    builds the whole new spec first and swaps it in only on success; `reset` rebuilds the
    world from the current spec (cheap: contracts and rules are compiled at load).
    """

    def __init__(
        self,
        settings: Settings,
        registry: SchemaRegistry | None = None,
        alternate: Alternate | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry or SchemaRegistry.load()
        self.base = WorldSpec(
            seed=settings.seed,
            api_keys=dict(settings.api_keys),
            plans=compile_plans(settings.plans),
            validation=settings.validation,
            max_body_bytes=settings.max_body_bytes,
            options=dataclasses.replace(Options(), **dict[str, Any](settings.limits)),
            body_timeout_s=settings.body_timeout_s,
        )
        self.scenario: Scenario | None = None
        self.spec = self.base
        if settings.scenario is not None:
            self.scenario = load_scenario(
                settings.scenario, defaults=self.base, registry=self.registry
            )
            self._check_keys(self.scenario)
            self.spec = self.scenario.spec
        self.coverage = Coverage()  # over the server's life: resets and loads keep it
        self.world = World(self.spec, self.coverage)
        self.alternate = alternate  # record or replay (PROTOCOL §9): answers in the runtime's place
        if alternate is None and settings.replay is not None:
            self.alternate = Replayer(load_recording(settings.replay, self.registry), self)
        self.server_errors: list[str] = []
        self.reload_error: str | None = None
        """Set while the last hot reload failed (health says `degraded`); None otherwise."""
        self._errors_lock = threading.Lock()
        self._control_ids = itertools.count(1)
        self.generation = 1
        """Counts the worlds this service has had (each reset or load makes a new one)."""
        self.closing = False
        self._watchers: tuple[Callable[[], None], ...] = ()

    def reset(self) -> None:
        """Back to the initial state of the current spec (run-time rules are dropped)."""
        self.world = World(self.spec, self.coverage)
        self.generation += 1
        self.changed()

    def load(self, scenario: Scenario) -> None:
        """Replace all state with a loaded scenario's (ScenarioError: nothing changes)."""
        self._check_keys(scenario)
        world = World(scenario.spec, self.coverage)
        self.scenario, self.spec, self.world = scenario, scenario.spec, world
        self.generation += 1
        self.changed()

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call `watcher()` after each change made through the control API, reset or load
        (the journal has its own `subscribe`); answer an unwatch."""
        self._watchers = (*self._watchers, watcher)

        def unwatch() -> None:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)

        return unwatch

    @property
    def watchers(self) -> int:
        """How many watchers (open streams) there are."""
        return len(self._watchers)

    def changed(self) -> None:
        """Tell the watchers (the dashboard's streams) that something changed."""
        for watcher in self._watchers:
            watcher()

    def close(self) -> None:
        """The server is stopping: open streams end now instead of holding up the stop."""
        self.closing = True
        self.changed()

    def load_path(self, path: str | Path) -> Scenario:
        """Load a scenario file (ScenarioError leaves the current state untouched)."""
        scenario = load_scenario(path, defaults=self.base, registry=self.registry)
        self.load(scenario)
        return scenario

    def load_text(
        self, text: str | bytes, filename: str, base_dir: str | Path | None = None
    ) -> Scenario:
        """Load a scenario from text (ScenarioError leaves the current state untouched)."""
        scenario = load_scenario_text(
            text, filename, base_dir, defaults=self.base, registry=self.registry
        )
        self.load(scenario)
        return scenario

    def _check_keys(self, scenario: Scenario) -> None:
        """An API key equal to the control token is refused (PROTOCOL.md §6.1): whoever
        holds the key would hold the control API too."""
        token = self.settings.control_token
        if token is not None and token in scenario.spec.api_keys:
            tenant = scenario.spec.api_keys[token]
            message = (
                f"an API key of tenant {tenant!r} equals the control token: "
                "API keys and the control token must differ"
            )
            raise ScenarioError(scenario.source, [ScenarioIssue(message, path="/tenants")])

    def control_request_id(self) -> str:
        """Ids of control requests: their own counter, so journals do not depend on them."""
        return f"req_ctl_{next(self._control_ids):06d}"

    def record_server_error(self, text: str) -> None:
        """Remember a 500 so the test harness can raise it in the test."""
        with self._errors_lock:
            self.server_errors.append(text)

    def route_error(self, request: Request, error: ApiError) -> Response:
        """A router error: /api/v1 paths draw a request id and are journaled; every other
        path gets a control id (`req_ctl_…`)."""
        path = request.url.path
        if not (path.startswith(API_PREFIX + "/") or path == API_PREFIX):
            # /_mock, /favicon.ico, anything else: no API id is drawn, so the ids of the
            # API (and the determinism of a run) do not depend on what a browser asks for
            return error_response(error, self.control_request_id())
        world = self.world
        request_id = world.ids.request_id()
        shown = shown_path(path, request.scope.get("query_string", b""), world.spec.api_keys)
        draft = Draft(world.clock.now_iso(), request_id, request.method, shown)
        draft.status, draft.response_body = error.status, envelope(error, request_id)
        draft.error = error.code
        log_entry(world.journal.record(draft, 0.0))
        return error_response(error, request_id)

    def unexpected(self, request: Request, exc: Exception) -> Response:
        """Whatever escaped every handler: `500 INTERNAL_ERROR` in the envelope, with a
        request id, journaled and recorded for the test harness; never uvicorn's plain 500.

        A client that went away is not an error: its connection is closed, nothing is said.
        """
        if isinstance(exc, ClientAborted | ClientDisconnect | ConnectionDropped):
            return DropConnection(quiet=True)
        text = "".join(traceback.format_exception(exc))
        self.record_server_error(text)
        log.error("internal error on %s %s\n%s", request.method, request.url.path, text)
        error = InternalError("internal error in vesanor-mock")
        try:
            return self.route_error(request, error)
        except Exception:  # the world itself is broken: answer without journaling
            self.record_server_error(traceback.format_exc())
            return error_response(error, self.control_request_id())

    async def handle(self, request: Request, op: Operation) -> Response:
        """Run one API operation through the rules, the runtime and the journal."""
        if self.alternate is not None:
            return await self.alternate.handle(self, request, op)
        exchange = Exchange(self.world, request, op, self.registry, self.record_server_error)
        return await exchange.run()


class MockApp(Starlette):
    """Starlette, with the server's `send` guarded outside every middleware (see faults.py).

    The router matches the percent-decoded path, so `sessions/x%2Fkill` would reach the
    kill route; an encoded slash is data, never a separator, and no id can hold one: 404.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        closing = closing_check(send)
        if closing is not None:
            scope[CLOSING_KEY] = closing
        send = guard(send)
        raw_path = scope.get("raw_path") or b""
        if ENCODED_SLASH in raw_path.lower():
            request = Request(scope, receive)
            shown = raw_path.decode("latin-1")
            error = NotFound(f"no route for {request.method} {shown}: %2F does not separate")
            service: MockService = self.state.service
            try:
                response = service.route_error(request, error)
            except Exception as exc:
                response = service.unexpected(request, exc)
            await response(scope, receive, send)
            return
        found = OPERATION_TABLE.match(scope["method"], scope["path"])
        if found is not None and not scope.get("root_path"):
            await self._operation(scope, receive, send, *found)
            return
        try:
            await super().__call__(scope, receive, send)
        except ConnectionDropped:  # a scripted drop without a socket: the caller sees it
            raise
        except Exception:  # answered in the envelope by `unexpected` (see create_app)
            return

    async def _operation(
        self, scope: Scope, receive: Receive, send: Send, op: Operation, params: dict[str, str]
    ) -> None:
        """One `/api/v1` operation, found by the operation table: no route scan, no
        middleware stack. What escapes is answered as the middleware would (`unexpected`:
        the 500 envelope, or a quiet close for a client that went away), unless the answer
        had already started, which ends the connection as before."""
        scope["app"], scope["path_params"] = self, params
        service: MockService = self.state.service
        request = Request(scope, receive)
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            response = await service.handle(request, op)
            await response(scope, receive, watched)
        except ConnectionDropped:  # a scripted drop without a socket: the caller sees it
            raise
        except Exception as exc:
            if not started:
                await service.unexpected(request, exc)(scope, receive, send)


def _endpoint(service: MockService, op: Operation) -> Route:
    async def endpoint(request: Request) -> Response:
        """One /api/v1 operation."""
        return await service.handle(request, op)

    endpoint.__name__ = op.name
    return Route(API_PREFIX + op.path, endpoint, methods=[op.method], name=op.name)


def _routes(service: MockService) -> list[BaseRoute]:
    return [
        *(_endpoint(service, op) for op in OPERATIONS),
        *control_routes(service),
        *ui_routes(service),
    ]


def create_app(settings: Settings | None = None, service: MockService | None = None) -> Starlette:
    """Build the ASGI app for one mock server."""
    service = service or MockService(settings or Settings())

    async def http_error(request: Request, exc: Exception) -> Response:
        """404 and 405 from the router, in the error envelope."""
        assert isinstance(exc, HTTPException)
        error: ApiError
        if exc.status_code == 405:
            error = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}",
                headers=dict(exc.headers or {}),
            )
        else:
            error = NotFound(f"no route for {request.method} {request.url.path}")
        return service.route_error(request, error)

    async def unexpected(request: Request, exc: Exception) -> Response:
        """Any other exception: the 500 envelope (Starlette re-raises it; MockApp ends it)."""
        return service.unexpected(request, exc)

    app = MockApp(
        routes=_routes(service),
        exception_handlers={HTTPException: http_error, Exception: unexpected},
    )
    app.router.redirect_slashes = False  # `/kill/` is an unknown path: 404, never a redirect
    app.state.service = service
    return app
