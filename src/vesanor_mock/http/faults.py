"""Transport faults a scenario rule asks for: raw answers, malformed bodies, dropped connections.

Dropping a connection needs the server's transport, which ASGI does not expose. A
`DropConnection` response sends a private `vesanor.drop_connection` message; the app's
outermost layer wraps the server's own `send` with `guard`, which, under uvicorn,
closes the socket before a single byte of an answer is written, then waits until uvicorn
has noticed the disconnect (so it neither logs nor sends its own 500). The client sees the
connection close without a response, as after a network failure. Under another server the
guard raises `ConnectionDropped` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..domain.rules import Respond
from .edge import JSON_TYPE, dumps

DROP_MESSAGE = "vesanor.drop_connection"
MALFORMED_BODY = b'{"vesanor_mock": "this answer is cut off on purpose", "state_version": '
"""A deliberately truncated JSON text: what `malformed_body` answers with status 200."""
DISCONNECT_WAIT_S = 2.0


class ConnectionDropped(ConnectionError):
    """A connection a scenario dropped, under a server whose socket the mock cannot close."""


class DropConnection(Response):
    """An 'answer' that closes the connection without answering.

    `quiet`: the client is already gone (an aborted request); where there is no socket to
    close, nothing is raised.
    """

    def __init__(self, quiet: bool = False) -> None:
        super().__init__(b"", status_code=200)
        self.quiet = quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": DROP_MESSAGE, "quiet": self.quiet})


def raw_response(respond: Respond, request_id: str) -> Response:
    """A scripted answer: the status, the JSON body if any, the headers, and X-Request-Id."""
    headers = {"X-Request-Id": request_id}
    headers.update(dict(respond.headers))
    content = dumps(respond.body) if respond.has_body else b""
    media = JSON_TYPE if respond.has_body else None
    lowered = {name.lower() for name in headers}
    if "content-type" in lowered:
        media = None
    return Response(content, status_code=respond.status, headers=headers, media_type=media)


def malformed_response(request_id: str) -> Response:
    """A 200 whose application/json body is not valid JSON."""
    return Response(
        MALFORMED_BODY,
        status_code=200,
        headers={"X-Request-Id": request_id},
        media_type=JSON_TYPE,
    )


def guard(send: Send) -> Send:
    """Wrap the server's own `send`: a `vesanor.drop_connection` message closes the socket."""

    async def guarded(message: Message) -> None:
        """Pass every message on, except the drop, which closes the connection."""
        if message["type"] == DROP_MESSAGE:
            await close_connection(send, quiet=bool(message.get("quiet")))
        else:
            await send(message)

    return guarded


def closing_check(send: Send) -> Callable[[], bool] | None:
    """For the server's own `send`: a callable that says whether uvicorn is closing the
    connection (its HTTP parser refused bytes after this request's body, or the peer left);
    None under a server whose transport the mock cannot see."""
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        return None

    def closing() -> bool:
        return bool(cycle.disconnected or transport.is_closing())

    return closing


async def close_connection(send: Send, quiet: bool = False) -> None:
    """Close the server's socket for this request, before any answer is written."""
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        if quiet:
            return
        raise ConnectionDropped("a scenario rule dropped the connection")
    transport.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DISCONNECT_WAIT_S
    while not cycle.disconnected and loop.time() < deadline:
        await asyncio.sleep(0.001)
