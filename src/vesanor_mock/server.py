"""MockServer: uvicorn in a background thread on 127.0.0.1, ready when `start()` returns."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .config import Settings
from .http.app import MockService, create_app


class ServerErrors(AssertionError):
    """Errors (HTTP 500s) that happened on the server thread, raised in the test."""


class MockServer:
    """A mock server for tests: `with MockServer() as server: requests.get(server.url + ...)`."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.settings = settings or Settings(port=0)
        self.host = host or self.settings.host
        self.port = self.settings.port if port is None else port
        self.startup_timeout = startup_timeout
        self.service = MockService(self.settings)
        self.app = create_app(service=self.service)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("the server is not running: call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> MockServer:
        """Bind, start uvicorn in a thread and wait until it accepts connections."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", **_fast_stack()
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="vesanor-mock", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("vesanor-mock did not start")
            time.sleep(0.002)
        sock.close()
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        self._server = self._thread = None

    def check(self) -> None:
        """Raise the errors (500s) the server met since the last check, then forget them."""
        errors = self.service.server_errors
        if errors:
            found = list(errors)
            errors.clear()
            raise ServerErrors("vesanor-mock had internal errors:\n" + "\n".join(found))

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _fast_stack() -> dict[str, Any]:
    """httptools and uvloop when installed: the fastest uvicorn setup available."""
    options: dict[str, Any] = {}
    try:
        import httptools  # noqa: F401

        options["http"] = "httptools"
    except ImportError:
        options["http"] = "h11"
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        options["loop"] = "asyncio"
    return options
