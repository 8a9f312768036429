"""pytest plugin: one mock server per test session (per xdist worker), reset for every test.

Fixtures: `vesanor_mock_settings`, `vesanor_mock_server` (session), `vesanor_mock` (the
per-test handle), `vesanor_mock_scenario` (load one mid-test), `vesanor_mock_asgi` and
`vesanor_mock_app` (in-process, no socket). Marker:
`@pytest.mark.vesanor_scenario(name, verify=True)`.
Options `--vesanor-mock-*` > `VESANOR_MOCK_*` variables > ini keys `vesanor_mock_*`.
After a test that used a handle, the server's internal errors and the loaded scenario's
unmet `expect` fail the test, with a report of what the mock saw; `verify=False` on the
marker, the ini key `vesanor_mock_verify = false` or `--vesanor-mock-no-verify` use the
scenario as plain setup (its `expect` is not checked). A scenario that does not load fails
the test with its problems, file:line:col, as `vesanor-mock validate` prints them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
FINDINGS_MARKER = "vesanor_findings"
MARKER_KEYWORDS = ("verify",)
HANDLES = pytest.StashKey[list["MockHandle"]]()
SERVER_HANDLE = pytest.StashKey["MockHandle"]()
RUN = pytest.StashKey["RunChecks"]()
H = TypeVar("H", bound="MockHandle")
CHECK_OPTIONS = {
    "findings": (
        "VESANOR_MOCK_FINDINGS",
        "client checks after each test: on (an error finding fails it) or off (default on)",
    ),
    "coverage": (
        "VESANOR_MOCK_COVERAGE",
        "write the run's coverage to PATH (JSON) and PATH.html",
    ),
    "coverage_min": (
        "VESANOR_MOCK_COVERAGE_MIN",
        "fail the run when coverage is below PERCENT",
    ),
}
WORKER_OUTPUT = "vesanor_mock"


class RunChecks:
    """What the run gathers: findings by rule, and each mock service used (for coverage)."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, int]] = {}  # rule -> {"severity", "count"}
        self.services: list[Any] = []
        self.seen: list[dict[str, int]] = []  # coverage counts from xdist workers

    def count(self, findings: list[dict[str, Any]]) -> None:
        for finding in findings:
            entry = self.rules.setdefault(finding["rule"], {"error": 0, "warning": 0})
            entry[finding["severity"]] += 1

    def add_rules(self, rules: dict[str, dict[str, int]]) -> None:
        for rule, counts in rules.items():
            entry = self.rules.setdefault(rule, {"error": 0, "warning": 0})
            for severity, n in counts.items():
                entry[severity] = entry.get(severity, 0) + int(n)

    def use(self, service: Any) -> None:
        if all(known is not service for known in self.services):
            self.services.append(service)

    def coverage_seen(self) -> dict[str, int]:
        from .coverage_report import merge

        return merge([*(s.coverage.seen() for s in self.services), *self.seen])


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
    group.addoption(
        "--vesanor-mock-findings",
        dest="vesanor_mock_findings",
        choices=("on", "off"),
        default=None,
        help=f"{CHECK_OPTIONS['findings'][1]} [VESANOR_MOCK_FINDINGS; ini vesanor_mock_findings]",
    )
    group.addoption(
        "--vesanor-mock-coverage",
        dest="vesanor_mock_coverage",
        metavar="PATH",
        default=None,
        help=f"{CHECK_OPTIONS['coverage'][1]} [VESANOR_MOCK_COVERAGE; ini vesanor_mock_coverage]",
    )
    group.addoption(
        "--vesanor-mock-coverage-min",
        dest="vesanor_mock_coverage_min",
        metavar="PERCENT",
        type=float,
        default=None,
        help=f"{CHECK_OPTIONS['coverage_min'][1]} "
        "[VESANOR_MOCK_COVERAGE_MIN; ini vesanor_mock_coverage_min]",
    )
    for name, (env, text) in CHECK_OPTIONS.items():
        parser.addini("vesanor_mock_" + name, f"{text} [{env}]", default=None)
    group.addoption(
        "--vesanor-mock-no-verify",
        dest="vesanor_mock_no_verify",
        action="store_true",
        default=False,
        help="do not check the scenarios' expect after each test [ini vesanor_mock_verify]",
    )
    parser.addini(
        "vesanor_mock_verify",
        "check the loaded scenario's expect after each test (default true)",
        type="bool",
        default=True,
    )


def check_value(config: pytest.Config, name: str) -> str | None:
    """A client-check option: command line > `VESANOR_MOCK_*` > ini (None when unset)."""
    given = config.getoption("vesanor_mock_" + name)
    if given is not None:
        return str(given)
    env = os.environ.get(CHECK_OPTIONS[name][0])
    if env:
        return env
    ini = config.getini("vesanor_mock_" + name)
    return str(ini) if ini else None


def _findings_on(config: pytest.Config) -> bool:
    value = (check_value(config, "findings") or "on").strip().lower()
    if value not in ("on", "off"):
        raise pytest.UsageError(f"vesanor-mock: findings must be 'on' or 'off', not {value!r}")
    return value == "on"


def _coverage_min(config: pytest.Config) -> float | None:
    value = check_value(config, "coverage_min")
    if value is None:
        return None
    try:
        minimum = float(value)
    except ValueError:
        raise pytest.UsageError(
            f"vesanor-mock: coverage minimum must be a percentage, not {value!r}"
        ) from None
    if not 0 <= minimum <= 100:
        raise pytest.UsageError(f"vesanor-mock: coverage minimum {value} is not in 0..100")
    return minimum


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; check the client-check options."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name_or_path, verify=True): load this scenario for the test (a bundled "
        "name like 'forced-block', a name in the scenario folder, or a path); verify=False "
        "does not check its expect after the test",
    )
    config.addinivalue_line(
        "markers",
        f"{FINDINGS_MARKER}(False): no client checks after this test (see docs/checks.md)",
    )
    _findings_on(config)
    _coverage_min(config)
    config.stash[RUN] = RunChecks()


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
    marker = item.get_closest_marker(FINDINGS_MARKER)
    enabled = _findings_on(item.config) and not (marker and marker.args and not marker.args[0])
    run = item.config.stash.get(RUN, None)
    for handle in handles:
        if run is not None and enabled:
            run.count(handle.findings())
        warnings = handle.finish(findings=enabled)
        if warnings:
            from .client import format_findings

            text = "\n".join(format_findings(warnings, handle.journal()))
            item.add_report_section("call", "vesanor-mock findings", text)
    return result


def _coverage_report(run: RunChecks) -> dict[str, Any]:
    from .catalogue import catalogue
    from .domain.coverage import report

    return report(catalogue(), run.coverage_seen())


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Send a worker's findings and coverage to the controller; else write and gate coverage."""
    config = session.config
    run = config.stash.get(RUN, None)
    if run is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput[WORKER_OUTPUT] = {"rules": run.rules, "seen": run.coverage_seen()}
        return
    if not run.services and not run.seen:
        return
    report = _coverage_report(run)
    path = check_value(config, "coverage")
    if path:
        import json

        from .coverage_report import html_page

        target = Path(path)
        target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        Path(f"{path}.html").write_text(html_page(report), encoding="utf-8")
    from .coverage_report import below

    if below(report, _coverage_min(config)) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: merge a finished worker's findings and coverage."""
    run = node.config.stash.get(RUN, None)
    output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if run is None or not output:
        return
    run.add_rules(output["rules"])
    run.seen.append(output["seen"])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Findings by rule, and coverage with the most important missing situations."""
    run = config.stash.get(RUN, None)
    if run is None or hasattr(config, "workeroutput") or (not run.services and not run.seen):
        return
    from .coverage_report import below, summary_lines

    write = terminalreporter.write_line
    terminalreporter.section("vesanor-mock")
    if run.rules:
        write("findings by rule:")
        for rule, counts in sorted(run.rules.items()):
            said = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
            write(f"  {rule}: {said}")
    else:
        write("findings: none")
    report = _coverage_report(run)
    for line in summary_lines(report):
        write(line)
    path = check_value(config, "coverage")
    if path:
        write(f"coverage written to {path} and {path}.html")
    failed = below(report, _coverage_min(config))
    if failed:
        write(failed, red=True)


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
    from .errors import ScenarioError
    from .scenarios.files import find_scenario

    values = plugin_values(pytestconfig, dict(os.environ))
    port = int(str(values.get("port", 0)))
    try:
        scenario = find_scenario(str(values.get("scenario", "default")), _folders(pytestconfig))
        broken = None
    except ScenarioError as error:
        broken = error.render()
    if broken is not None:
        pytest.fail(f"vesanor-mock scenario does not load:\n{broken}", pytrace=False)
    if "replay" in values:  # a recording path is relative to the rootdir
        values["replay"] = str(pytestconfig.rootpath / str(values["replay"]))
    return settings_from(values, port=port + _worker_index() if port else 0, scenario=str(scenario))


@pytest.fixture(scope="session")
def vesanor_mock_server(
    vesanor_mock_settings: Settings, pytestconfig: pytest.Config
) -> Iterator[MockServer]:
    """The session's running MockServer (one per xdist worker); tests use `vesanor_mock`."""
    from .errors import ScenarioError
    from .server import MockServer, ServerStartError

    try:
        server = MockServer(vesanor_mock_settings)
        broken = None
    except ScenarioError as error:
        broken = error.render()
    if broken is not None:
        pytest.fail(f"vesanor-mock scenario does not load:\n{broken}", pytrace=False)
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


def _verify_default(config: pytest.Config) -> bool:
    """False with `--vesanor-mock-no-verify` or the ini key `vesanor_mock_verify = false`."""
    if config.getoption("vesanor_mock_no_verify", False):
        return False
    return bool(config.getini("vesanor_mock_verify"))


def _marker(request: pytest.FixtureRequest) -> tuple[str | None, bool]:
    """The marker's scenario and whether to verify; an unknown keyword fails the test."""
    __tracebackhide__ = True
    verify = _verify_default(request.config)
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return None, verify
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYWORDS))
    if unknown:
        known = ", ".join(MARKER_KEYWORDS)
        pytest.fail(f"{MARKER}: unknown keyword(s) {', '.join(unknown)} (known: {known})", False)
    if "verify" in marker.kwargs:
        verify = bool(marker.kwargs["verify"])
    return (str(marker.args[0]) if marker.args else None), verify


def _use(handle: H, request: pytest.FixtureRequest) -> Iterator[H]:
    """Reset (or load the marker's scenario), watch the test, then check the server."""
    __tracebackhide__ = True
    from .errors import ScenarioError

    scenario, verify = _marker(request)
    try:
        handle.begin(scenario, verify=verify)
        broken = None
    except ScenarioError as error:
        broken = error.render()
    if broken is not None:  # failed outside the except: no "during handling of" chain
        pytest.fail(f"{MARKER}({scenario!r}) does not load:\n{broken}", pytrace=False)
    run = request.config.stash.get(RUN, None)
    if run is not None:
        run.use(handle.service)
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
