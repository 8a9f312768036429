"""The dashboard (GET /_mock/ui), its event stream (GET /_mock/stream) and the landing page (GET /).

The page is static: HTML, CSS and JavaScript modules shipped in the package (`ui/`), read
once and served from memory, with no request to anywhere but this server. It reads the
control API like any client does. The stream tells an open page that something changed,
`event: change` with `{"seq", "total", "generation"}` (the journal's last seq, entries ever
recorded, and the world's generation, which a reset or load moves), at most
`1 / COALESCE_S` times a second however fast requests arrive; the page then fetches
only what is new. With nobody listening, recording a request pays one truthiness check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import ApiError, NotFound
from .api import API_PREFIX, OPERATIONS
from .control import CONTROL_PREFIX, check_access
from .edge import error_response, json_response

if TYPE_CHECKING:
    from .app import MockService

UI_PATH = CONTROL_PREFIX + "/ui"
STREAM_PATH = CONTROL_PREFIX + "/stream"
COALESCE_S = 0.25
"""The least time between two change events of one stream."""
KEEPALIVE_S = 15.0
"""A comment line this often keeps proxies and the browser from closing an idle stream."""
MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def ui_routes(service: MockService) -> list[Route]:
    """GET /, the dashboard's files, and the event stream."""

    async def landing(request: Request) -> Response:
        """GET /: where to go (HTML for a browser, JSON for an API client)."""
        routes = sorted(
            f"{method} {route.path}"
            for route in request.app.routes
            if isinstance(route, Route) and route.path.startswith(CONTROL_PREFIX + "/")
            for method in sorted((route.methods or set()) - {"HEAD"})
        )
        needs_token = service.settings.control_token is not None
        return landing_response(request, service.control_request_id(), routes, needs_token)

    async def page(request: Request) -> Response:
        """GET /_mock/ui and /_mock/ui/{name}: the dashboard's static files."""
        name = request.path_params.get("name", "index.html")
        request_id = service.control_request_id()
        found = asset(name)
        if found is None:
            return error_response(NotFound(f"no dashboard file {name!r}"), request_id)
        media, content = found
        headers = {**SECURITY_HEADERS, "X-Request-Id": request_id}
        return Response(content, media_type=media, headers=headers)

    async def stream(request: Request) -> Response:
        """GET /_mock/stream: Server-Sent Events telling the page what changed."""
        request_id = service.control_request_id()
        try:
            check_access(service, request)
        except ApiError as error:
            return error_response(error, request_id)
        headers = {"Cache-Control": "no-cache", "X-Request-Id": request_id}
        return StreamingResponse(changes(service), media_type="text/event-stream", headers=headers)

    return [
        Route("/", landing, methods=["GET"]),
        Route(UI_PATH, page, methods=["GET"]),
        Route(UI_PATH + "/{name}", page, methods=["GET"]),
        Route(STREAM_PATH, stream, methods=["GET"]),
    ]


@cache
def asset(name: str) -> tuple[str, bytes] | None:
    """A file of the dashboard: its media type and bytes (None for any other name)."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in MEDIA or "/" in name or "\\" in name or name.startswith("."):
        return None
    item = resources.files("vesanor_mock").joinpath("ui", name)
    if not item.is_file():
        return None
    return MEDIA[suffix], item.read_bytes()


async def changes(service: MockService) -> AsyncIterator[bytes]:
    """The events of one open stream, until the client leaves or the server stops."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def poke(*_: Any) -> None:
        if wake.is_set():
            return
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    world = service.world
    unsubscribe = world.journal.subscribe(poke)
    unwatch = service.watch(poke)
    try:
        yield b"retry: 1000\n" + _event(service)
        while not service.closing:
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            wake.clear()
            if service.closing:
                return
            if service.world is not world:
                unsubscribe()
                world = service.world
                unsubscribe = world.journal.subscribe(poke)
            yield _event(service)
            await asyncio.sleep(COALESCE_S)
    finally:
        unsubscribe()
        unwatch()


def _event(service: MockService) -> bytes:
    journal = service.world.journal
    data = {"seq": journal.total, "total": journal.total, "generation": service.generation}
    return b"event: change\ndata: " + json.dumps(data).encode() + b"\n\n"


def landing(routes: list[str], needs_token: bool) -> dict[str, Any]:
    """What GET / says: where the dashboard, the OpenAPI document and the API are, and
    which control routes this server answers (`GET /_mock/health`, ...) and the names of the
    API's endpoints (as the journal's `endpoint` filter takes them)."""
    return {
        "name": "vesanor-mock",
        "dashboard": UI_PATH,
        "openapi": "/openapi.json",
        "api_base": API_PREFIX,
        "control": CONTROL_PREFIX,
        "control_routes": routes,
        "control_token_required": needs_token,
        "endpoints": [op.name for op in OPERATIONS],
    }


def landing_response(
    request: Request, request_id: str, routes: list[str], needs_token: bool
) -> Response:
    """HTML when the client prefers it (a browser), else JSON."""
    info = landing(routes, needs_token)
    accept = request.headers.get("accept", "")
    if _prefers_html(accept):
        links = "".join(
            f'<li><a href="{href}">{label}</a> <code>{href}</code></li>'
            for label, href in (
                ("Dashboard", info["dashboard"]),
                ("OpenAPI document", info["openapi"]),
            )
        )
        html = (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            '<link rel="icon" href="data:,"><title>vesanor-mock</title>'
            "<h1>vesanor-mock</h1><ul>"
            f"{links}<li>API base <code>{info['api_base']}</code></li>"
            f"<li>Control API <code>{info['control']}</code></li></ul>"
        )
        return HTMLResponse(html, headers={"X-Request-Id": request_id, **SECURITY_HEADERS})
    return json_response(200, info, request_id)


def _prefers_html(accept: str) -> bool:
    """True when `text/html` is asked for before (or without) `application/json`."""
    kinds = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    html = kinds.index("text/html") if "text/html" in kinds else None
    as_json = kinds.index("application/json") if "application/json" in kinds else None
    return html is not None and (as_json is None or html < as_json)
