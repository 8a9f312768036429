"""pytest plugin: one mock server per test session (per xdist worker), reset for every test.

Fixtures: `vesanor_mock_settings`, `vesanor_mock_server` (session), `vesanor_mock` (the
per-test handle), `vesanor_mock_scenario` (load one mid-test), `vesanor_mock_asgi` and
`vesanor_mock_app` (in-process, no socket). Marker: `@pytest.mark.vesanor_scenario(name)`.
Options `--vesanor-mock-*` > `VESANOR_MOCK_*` variables > ini keys `vesanor_mock_*`.
After a test that used a handle, the server's internal errors and the loaded scenario's
unmet `expect` fail the test, with a report of what the mock saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from .config import OPTIONS, Settings, resolve, settings_from

if TYPE_CHECKING:  # imported when a fixture is used: every pytest run loads this plugin
    from .harness import InProcessHandle, MockHandle
    from .scenarios.loading import Scenario
    from .server import MockServer

PLUGIN_OPTIONS = {
    "host": "address the session's mock binds (default 127.0.0.1)",
    "port": "port it binds (default 0: a free one; under xdist, worker N adds N)",
    "scenario": "scenario every test starts from: a bundled name or a path (default: default)",
    "scenario_dir": "folder where scenario names are looked up before the bundled ones",
    "validation": "request validation: strict, lenient or off (default strict)",
    "http_stack": "auto (httptools and uvloop when installed; default) or pure (asyncio, h11)",
    "replay": "answer /api/v1 from this recording (docs/record-replay.md)",
}
MARKER = "vesanor_scenario"
HANDLES = pytest.StashKey[list["MockHandle"]]()
SERVER_HANDLE = pytest.StashKey["MockHandle"]()
H = TypeVar("H", bound="MockHandle")


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--vesanor-mock-<name>` options and `vesanor_mock_<name>` ini keys."""
    group = parser.getgroup("vesanor-mock", "vesanor-mock (the Vesanor Runtime API mock)")
    for name, text in PLUGIN_OPTIONS.items():
        env = OPTIONS[name].env
        group.addoption(
            "--vesanor-mock-" + name.replace("_", "-"),
            dest="vesanor_mock_" + name,
            type=OPTIONS[name].argtype,
            default=None,
            help=f"{text} [{env}; ini vesanor_mock_{name}]",
        )
        parser.addini("vesanor_mock_" + name, f"{text} [{env}]", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name_or_path): load this scenario for the test (a bundled name like "
        "'forced-block', a name in the scenario folder, or a path)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After the test body: internal errors and unmet expectations fail the test."""
    __tracebackhide__ = True
    handles = item.stash.get(HANDLES, [])
    try:
        result = yield
    except BaseException:
        for handle in handles:  # the test failed already; its server errors explain it
            errors = handle.take_errors()
            if errors:
                item.add_report_section("call", "vesanor-mock errors", "\n".join(errors))
        raise
    for handle in handles:
        handle.finish()
    return result


def plugin_values(config: pytest.Config, env: dict[str, str]) -> dict[str, object]:
    """The plugin's options: command line > `VESANOR_MOCK_*` > ini."""
    flags = {name: config.getoption("vesanor_mock_" + name) for name in PLUGIN_OPTIONS}
    ini = {name: config.getini("vesanor_mock_" + name) for name in PLUGIN_OPTIONS}
    return resolve(flags, env, ini, names=tuple(PLUGIN_OPTIONS))


def _worker_index() -> int:
    """0, or N for the pytest-xdist worker `gwN`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def _folders(config: pytest.Config) -> list[Path]:
    """Where scenario names are looked up: the scenario folder (if set), then the rootdir."""
    values = plugin_values(config, dict(os.environ))
    folder = values.get("scenario_dir")
    given = [config.rootpath / str(folder)] if folder else []
    return [*given, config.rootpath]


@pytest.fixture(scope="session")
def vesanor_mock_settings(pytestconfig: pytest.Config) -> Settings:
    """Settings of the session's mock, from options, `VESANOR_MOCK_*` and ini (override me)."""
    from .scenarios.files import find_scenario

    values = plugin_values(pytestconfig, dict(os.environ))
    port = int(str(values.get("port", 0)))
    scenario = find_scenario(str(values.get("scenario", "default")), _folders(pytestconfig))
    if "replay" in values:  # a recording path is relative to the rootdir
        values["replay"] = str(pytestconfig.rootpath / str(values["replay"]))
    return settings_from(values, port=port + _worker_index() if port else 0, scenario=str(scenario))


@pytest.fixture(scope="session")
def vesanor_mock_server(
    vesanor_mock_settings: Settings, pytestconfig: pytest.Config
) -> Iterator[MockServer]:
    """The session's running MockServer (one per xdist worker); tests use `vesanor_mock`."""
    from .server import MockServer, ServerStartError

    server = MockServer(vesanor_mock_settings)
    try:
        server.start()
    except ServerStartError as error:
        raise ServerStartError(f"{error}{_came_from(pytestconfig, ('host', 'port'))}") from None
    try:
        yield server
    finally:
        server.stop()


def _came_from(config: pytest.Config, names: tuple[str, ...]) -> str:
    """Where the given plugin settings were set, as a hint for an error (empty if nowhere)."""
    said = []
    for name in names:
        option = config.getoption("vesanor_mock_" + name)
        env = OPTIONS[name].env
        if option is not None:
            said.append(f"--vesanor-mock-{name.replace('_', '-')} {option}")
        elif env in os.environ:
            said.append(f"{env}={os.environ[env]} in the environment")
        elif config.getini("vesanor_mock_" + name):
            said.append(f"vesanor_mock_{name} = {config.getini('vesanor_mock_' + name)} (ini)")
    if not said:
        return ""
    return f" (set by {', '.join(said)}; without it the plugin binds 127.0.0.1 on a free port)"


def _server_handle(server: MockServer, config: pytest.Config) -> MockHandle:
    """The session's handle on its server, made once (it caches parsed scenarios)."""
    from .harness import MockHandle

    handle = config.stash.get(SERVER_HANDLE, None)
    if handle is None or handle.service is not server.service:
        handle = MockHandle(server.service, server.url, _folders(config))
        config.stash[SERVER_HANDLE] = handle
    return handle


def _use(handle: H, request: pytest.FixtureRequest) -> Iterator[H]:
    """Reset (or load the marker's scenario), watch the test, then check the server."""
    marker = request.node.get_closest_marker(MARKER)
    handle.begin(marker.args[0] if marker and marker.args else None)
    request.node.stash.setdefault(HANDLES, []).append(handle)
    yield handle
    request.node.stash[HANDLES].remove(handle)
    handle.check()


@pytest.fixture
def vesanor_mock(
    vesanor_mock_server: MockServer, request: pytest.FixtureRequest
) -> Iterator[MockHandle]:
    """The mock for one test, reset first: `url`, `api_url`, `api_key`, `control`, `load()`.

    A `@pytest.mark.vesanor_scenario("name-or-path")` marker loads that scenario instead.
    After the test, internal errors (500s) and the scenario's unmet `expect` fail it.
    """
    yield from _use(_server_handle(vesanor_mock_server, request.config), request)


@pytest.fixture
def vesanor_mock_scenario(vesanor_mock: MockHandle) -> Callable[[str | Path], Scenario]:
    """Load a scenario mid-test: `vesanor_mock_scenario("lease-expiry")` (resets state)."""
    return vesanor_mock.load


@pytest.fixture(scope="session")
def vesanor_mock_asgi(
    vesanor_mock_settings: Settings, pytestconfig: pytest.Config
) -> Iterator[InProcessHandle]:
    """The session's in-process mock (no socket); tests use `vesanor_mock_app`."""
    from .harness import in_process
    from .http.app import MockService

    handle = in_process(MockService(vesanor_mock_settings), _folders(pytestconfig))
    yield handle
    handle.mock.close()


@pytest.fixture
def vesanor_mock_app(
    vesanor_mock_asgi: InProcessHandle, request: pytest.FixtureRequest
) -> Iterator[InProcessHandle]:
    """Like `vesanor_mock`, in-process: `vesanor_mock_app.client.post("/api/v1/...")`."""
    yield from _use(vesanor_mock_asgi, request)
