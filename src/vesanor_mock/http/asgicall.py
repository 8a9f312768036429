"""Send requests to a MockService's app in-process, one at a time, no socket, no httpx.

`drift` uses it to ask the mock's own engine what it answers to recorded requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from .app import MockService, create_app


class InProcessCaller:
    """Calls the ASGI app of a service on its own event loop; `close()` when done."""

    def __init__(self, service: MockService) -> None:
        self.app = create_app(service=service)
        self.loop = asyncio.new_event_loop()

    def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int | None, bytes]:
        """One request; (status, body), status None when the app answered nothing."""
        return self.loop.run_until_complete(self._call(method, target, headers, body))

    def close(self) -> None:
        """Close the event loop."""
        self.loop.close()

    async def _call(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int | None, bytes]:
        path, _, query = target.partition("?")
        all_headers = [*headers, ("host", "vesanor-mock.drift")]
        if body:
            all_headers.append(("content-length", str(len(body))))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("utf-8"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("utf-8")) for k, v in all_headers],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        given = False
        status: int | None = None
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)
