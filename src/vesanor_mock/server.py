"""MockServer: uvicorn in a background thread, ready when `start()` returns; and the
foreground runner of `vesanor-mock serve`. The only module that imports uvicorn.

Stopping asks uvicorn to exit (`should_exit`); a request still in flight (a scripted
`delay_ms`, say) gets `grace` seconds, then uvicorn is told to give up (`force_exit`)
and its remaining tasks are cancelled, so `stop()` never hangs on a slow answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from . import gcpolicy
from .config import Settings, is_loopback
from .http.alternate import Alternate
from .http.app import MockService, create_app
from .scenarios.files import find_scenario

DEFAULT_GRACE = 1.0
log = logging.getLogger("vesanor_mock")


class ServerErrors(AssertionError):
    """Errors (HTTP 500s) that happened on the server thread, raised in the test."""


class ServerStartError(RuntimeError):
    """The server could not bind its address or did not start in time."""


class _Uvicorn(uvicorn.Server):
    """A uvicorn server that calls `on_started` once it accepts connections, and closes
    the service's open streams (the dashboard's) when it starts shutting down."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the open event streams, then shut down as uvicorn does."""
        service = getattr(getattr(self.config.app, "state", None), "service", None)
        if service is not None:
            service.close()
        await super().shutdown(sockets=sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then say so."""
        await super().startup(sockets=sockets)
        if self.started:
            self.on_started()


class MockServer:
    """A mock server for tests: `with MockServer() as server: requests.get(server.url + ...)`.

    `MockServer()` listens on 127.0.0.1 and a free port with no scenario;
    `MockServer(scenario="fixtures/x.yaml")` loads a file, `scenario="forced-block"` a
    bundled one; `settings` gives everything else. `host` and `port` override the settings'.
    `replay="run.json"` answers /api/v1 from a recording; `alternate` takes any other
    stand-in for the runtime (a `Recorder`, see docs/record-replay.md).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        scenario: str | Path | None = None,
        host: str | None = None,
        port: int | None = None,
        startup_timeout: float = 10.0,
        grace: float = DEFAULT_GRACE,
        replay: str | Path | None = None,
        alternate: Alternate | None = None,
    ) -> None:
        settings = settings or Settings(port=0)
        if scenario is not None:
            settings = dataclasses.replace(settings, scenario=str(find_scenario(scenario)))
        if replay is not None:
            settings = dataclasses.replace(settings, replay=str(replay))
        self.settings = settings
        self.host = host or settings.host
        self.port = settings.port if port is None else port
        self.startup_timeout = startup_timeout
        self.grace = grace
        self.service = MockService(settings, alternate=alternate)
        self.app = create_app(service=self.service)
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("the server is not running: call start() first")
        return base_url(self.host, self.port)

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._server is not None

    def start(self) -> MockServer:
        """Bind, start uvicorn in a thread and wait until it accepts connections."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        if not is_loopback(self.host) and not self.settings.control_token:
            log.warning(
                "vesanor-mock on %s: /api/v1 is reachable from other machines; the /_mock "
                "control API has no token, so it answers this machine only",
                base_url(self.host, self.port),
            )
        ready = threading.Event()
        config = uvicorn_config(self.app, self.grace, self.settings.http_stack)
        server = _Uvicorn(config, ready.set)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="vesanor-mock", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        if not ready.wait(self.startup_timeout):
            self.stop()
            raise ServerStartError(f"vesanor-mock did not start within {self.startup_timeout} s")
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(self.grace + 0.5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

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


def serve_forever(
    service: MockService, on_ready: Callable[[str], None], grace: float = DEFAULT_GRACE
) -> bool:
    """Serve in the foreground until SIGINT or SIGTERM; False if it never started.

    uvicorn catches both signals, shuts down, then raises them again; the handlers set
    here receive that second delivery, so a signal ends the process cleanly (exit 0).
    """
    settings = service.settings
    sock = bind(settings.host, settings.port)
    url = base_url(settings.host, sock.getsockname()[1])
    config = uvicorn_config(create_app(service=service), grace, settings.http_stack)
    server = _Uvicorn(config, lambda: on_ready(url))
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    gcpolicy.install()
    try:
        server.run(sockets=[sock])
    finally:
        gcpolicy.uninstall()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return server.started


def _stopped(sig: int, frame: FrameType | None) -> None:
    """The signal uvicorn raises again after its shutdown: already handled."""


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket (IPv6 when the host is an IPv6 address) whose connections have
    TCP_NODELAY.

    Nagle's algorithm must be off on every accepted connection: h11 writes an answer's
    head and body separately, and with Nagle on the body waits for the client's delayed
    ACK (~40 ms per request on a keep-alive connection). uvloop sets TCP_NODELAY itself;
    asyncio sets it only when the listening socket's `proto` is IPPROTO_TCP (accepted
    sockets inherit it), so the protocol is named here rather than left 0. The option is
    set on the listener too, which Linux and the BSDs pass on to accepted sockets.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with contextlib.suppress(OSError):  # a platform refusing it on a listener: asyncio's is enough
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def base_url(host: str, port: int) -> str:
    """`http://host:port`, with brackets around an IPv6 address."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}"


def uvicorn_config(app: Any, grace: float, stack: str = "auto") -> uvicorn.Config:
    """Quiet uvicorn (our own access log), no lifespan; the fastest stack installed, or
    asyncio and h11 (pure Python) when `stack` is "pure"."""
    return uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, round(grace)),
        **(PURE_STACK if stack == "pure" else _fast_stack()),
    )


PURE_STACK: dict[str, Any] = {"http": "h11", "loop": "asyncio"}


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
