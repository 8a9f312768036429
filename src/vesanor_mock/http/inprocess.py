"""The mock without a socket: a Starlette TestClient that calls the ASGI app directly.

A rule's `drop_connection` raises `ConnectionDropped` (a ConnectionError) from the
client's call, where a socket would have been closed. TestClient needs httpx2, a regular
dependency of the package, so the in-process fixture works on a plain install.
"""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from .app import MockService, create_app

BASE_URL = "http://vesanor-mock.test"


class InProcessMock:
    """One MockService behind a TestClient; `client` speaks httpx's API to `BASE_URL`."""

    def __init__(self, service: MockService) -> None:
        self.service = service
        self.url = BASE_URL
        # Internal errors are answered as 500s (and raised later by check()); the only
        # exception that reaches the caller is a scripted drop, as a ConnectionError.
        # The caller is this process: its control calls come from loopback (PROTOCOL §6.1).
        self.client = TestClient(
            create_app(service=service), base_url=BASE_URL, client=("127.0.0.1", 50000)
        )
        self.client.__enter__()  # one event loop thread for every request, not one each

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        query: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, bytes]:
        """A transport for MockClient: one request through the app, no socket."""
        answer: Any = self.client.request(method, url, headers=headers, params=query, content=body)
        return int(answer.status_code), bytes(answer.content)

    def close(self) -> None:
        """Stop the client's event loop thread."""
        self.client.__exit__(None, None, None)
