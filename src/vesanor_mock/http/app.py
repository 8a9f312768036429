"""The Starlette app: `create_app(settings)` builds routes over one MockService; nothing global."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import Settings
from ..domain.world import World, WorldSpec
from ..errors import (
    ApiError,
    FieldError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
)
from ..schemas import SchemaRegistry
from .api import API_PREFIX, OPERATIONS, Operation
from .edge import (
    bearer_token,
    check_media_type,
    error_response,
    json_response,
    parse_json,
    read_body,
    require_object,
    unauthorized,
)

log = logging.getLogger("vesanor_mock")

ENVIRONMENTS = ("development", "staging", "production")


class MockService:
    """Everything one running mock holds: settings, compiled schemas, the current world."""

    def __init__(self, settings: Settings, registry: SchemaRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or SchemaRegistry.load()
        self.spec = WorldSpec(
            seed=settings.seed,
            api_keys=dict(settings.api_keys),
            plans=settings.plans,
            validation=settings.validation,
            max_body_bytes=settings.max_body_bytes,
        )
        self.world = World(self.spec)
        self.server_errors: list[str] = []
        self._errors_lock = threading.Lock()

    def reset(self) -> None:
        """Back to the initial state of the current spec."""
        self.world = World(self.spec)

    def record_server_error(self, text: str) -> None:
        """Remember a 500 so the test harness can raise it in the test."""
        with self._errors_lock:
            self.server_errors.append(text)

    async def handle(self, request: Request, op: Operation) -> Response:
        """Run one API operation: auth, body, validation, runtime call, answer."""
        world = self.world
        request_id = world.ids.request_id()
        try:
            status, answer = await self._run(world, request, op)
            return json_response(status, answer, request_id)
        except ApiError as error:
            return error_response(error, request_id)
        except Exception:  # a bug in the mock: answer the envelope and make the test fail
            text = traceback.format_exc()
            self.record_server_error(text)
            log.error("internal error on %s %s\n%s", request.method, request.url.path, text)
            return error_response(InternalError("internal error in vesanor-mock"), request_id)

    async def _run(self, world: World, request: Request, op: Operation) -> tuple[int, Any]:
        token = bearer_token(request)
        if token is None:
            raise unauthorized("missing or malformed Authorization: Bearer <api key> header")
        tenant = world.tenant_for(token)
        if tenant is None:
            raise unauthorized("unknown API key")
        query = self._query(request, op, world.spec.validation)
        body: dict[str, Any] = {}
        if op.has_body:
            check_media_type(request)
            raw = await read_body(request, world.spec.max_body_bytes)
            body = require_object(parse_json(raw))
            self.registry.validate_request(op.name, body, world.spec.validation)
        params = dict(request.path_params)
        return op.call(world.runtime, tenant, params, query, body)

    @staticmethod
    def _query(request: Request, op: Operation, mode: str) -> dict[str, str]:
        """Query parameters, checked: errors point into them as if they were a JSON object."""
        query = dict(request.query_params)
        errors: list[FieldError] = []
        if mode == "strict":
            errors += [
                FieldError(f"/{name}", f"unknown query parameter {name!r}", "additionalProperties")
                for name in query
                if name not in op.query
            ]
        if mode != "off":
            errors += _query_errors(op.name, query)
        if errors:
            raise ValidationFailed(errors)
        return query


def _query_errors(name: str, query: dict[str, str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if name == "governance_plan":
        if not query.get("agent"):
            errors.append(FieldError("/agent", "query parameter 'agent' is required", "required"))
        env = query.get("environment")
        if env is not None and env not in ENVIRONMENTS:
            errors.append(
                FieldError(
                    "/environment", f"expected one of {list(ENVIRONMENTS)}, got {env!r}", "enum"
                )
            )
    if name == "get_session" and query.get("include", "pending") != "pending":
        errors.append(
            FieldError("/include", f"expected 'pending', got {query['include']!r}", "enum")
        )
    return errors


Endpoint = Callable[[Request], Awaitable[Response]]


def _endpoint(service: MockService, op: Operation) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await service.handle(request, op)

    endpoint.__name__ = op.name
    return endpoint


def _routes(service: MockService) -> list[Route]:
    return [
        Route(API_PREFIX + op.path, _endpoint(service, op), methods=[op.method], name=op.name)
        for op in OPERATIONS
    ]


def create_app(settings: Settings | None = None, service: MockService | None = None) -> Starlette:
    """Build the ASGI app for one mock server."""
    service = service or MockService(settings or Settings())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        request_id = service.world.ids.request_id()
        error: ApiError
        if exc.status_code == 405:
            error = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}",
                headers=dict(exc.headers or {}),
            )
        else:
            error = NotFound(f"no route for {request.method} {request.url.path}")
        return error_response(error, request_id)

    app = Starlette(routes=_routes(service), exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app
