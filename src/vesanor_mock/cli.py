"""The `vesanor-mock` command line: serve, validate, verify, openapi, export, record, drift.

Every `serve` flag, and `--url` and `--control-token` of `verify` and `export`, can also be
given as a `VESANOR_MOCK_*` environment variable (`--control-token` is
`VESANOR_MOCK_CONTROL_TOKEN`); a flag wins over the variable (see config.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import __version__, checks_cli
from .client import ControlError, MockClient, format_findings
from .config import OPTIONS, is_loopback, resolve, settings_from
from .data import doc_topics
from .domain.world import DEFAULT_API_KEY
from .errors import ConfigError, RecordingError, ScenarioError, ScenarioIssue
from .http import accesslog
from .http.app import MockService
from .http.asgicall import InProcessCaller
from .http.proxy import DEFAULT_TIMEOUT, Recorder
from .http.replaying import Replayer
from .journal_lines import export_header, journal_line
from .openapi import build_openapi
from .recording.drift import drift as run_drift
from .recording.format import load_recording
from .recording.placeholders import parse_mask
from .scenarios.export import mask
from .scenarios.files import bundled_scenarios, find_scenario, read_expectations
from .scenarios.loading import dump_scenario, load_scenario
from .schemas import SchemaRegistry
from .server import ServerStartError, serve_forever
from .watch import ScenarioWatcher

EXIT_OK = 0
"""Success: served until stopped, every file valid, every expectation met, written."""
EXIT_FAILED = 1
"""A scenario does not load, an expectation failed, or the server could not start."""
EXIT_USAGE = 2
"""A bad flag, `VESANOR_MOCK_*` value, or `--expect` file."""
EXIT_UNREACHABLE = 3
"""`verify` or `export`: no mock answered at `--url`, or its control API refused."""

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "a scenario does not load, an expectation failed, or serve could not start",
    EXIT_USAGE: "a bad flag, VESANOR_MOCK_* value or --expect file",
    EXIT_UNREACHABLE: (
        "verify/export/journal: no mock answered at --url, or its control API refused"
    ),
}
DOCS_URL = "https://github.com/vesanor/vesanor-mock/blob/main/docs"
DEFAULT_SCENARIO = "default"
DEFAULT_URL = "http://127.0.0.1:8080"
SERVE_OPTIONS = (
    "host",
    "port",
    "scenario",
    "scenario_dir",
    "seed",
    "validation",
    "control_token",
    "log_format",
    "http_stack",
    "replay",
    "limits",
    "body_timeout_s",
)
RECORD_OPTIONS = ("upstream", "host", "port", "seed", "control_token", "log_format")
Env = Mapping[str, str]


def _flag(parser: argparse.ArgumentParser, name: str, **extra: Any) -> None:
    """Add an option's flag, its help naming its environment variable."""
    option = OPTIONS[name]
    parser.add_argument(
        option.flag,
        type=option.argtype,
        default=None,
        help=f"{option.help} [{option.env}]",
        **extra,
    )


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="vesanor-mock",
        description="A local, deterministic mock of the Vesanor Runtime API.",
        epilog=f"exit codes:\n{codes}\n\n{where_documented('cli')}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vesanor-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the mock server in the foreground")
    for name in SERVE_OPTIONS:
        _flag(serve, name)
    serve.add_argument(
        "--reload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{OPTIONS['reload'].help} [{OPTIONS['reload'].env}]",
    )
    validate = commands.add_parser("validate", help="check scenario files, print every problem")
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="scenario YAML or JSON files, or bundled names"
    )
    commands.add_parser("scenarios", help="list the bundled scenarios, with what each is for")
    verify = commands.add_parser("verify", help="check a running mock's expectations")
    verify.add_argument(
        "--expect",
        metavar="FILE",
        help="expectations to check (a list, or a "
        "scenario's expect); default: the loaded scenario's own",
    )
    verify.add_argument(
        "--findings",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also check what the client did wrong (docs/checks.md); an error finding "
        "fails (default: on)",
    )
    verify.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when there is nothing to check (default: exit 1, a forgotten expect)",
    )
    export = commands.add_parser("export", help="write a running mock's run as a scenario")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    journal = commands.add_parser(
        "journal", help="print a running mock's requests, one line each (--follow: live)"
    )
    journal.add_argument(
        "--follow", action="store_true", help="keep printing new requests until interrupted"
    )
    journal.add_argument("--session", metavar="S", help="only the requests of session S")
    journal.add_argument("--endpoint", metavar="E", help="only the requests to endpoint E")
    journal.add_argument(
        "--json", action="store_true", help="one JSON object per line (the entry and its digest)"
    )
    coverage, _ = checks_cli.add_parsers(commands)
    for command in (verify, export, journal, coverage):
        _flag(command, "url")
        _flag(command, "control_token")
    commands.add_parser("openapi", help="print the OpenAPI 3.1 document of /api/v1")
    record = commands.add_parser(
        "record", help="proxy /api/v1 to a runtime and record the exchanges (PROTOCOL §9)"
    )
    for name in RECORD_OPTIONS:
        _flag(record, name)
    record.add_argument(
        "-o", "--output", metavar="FILE", required=True, help="the recording to write"
    )
    record.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="POINTER",
        type=_mask,
        help="also mask this JSON Pointer in request and answer bodies (* matches any key "
        "or index); repeat for more",
    )
    record.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="answer 502 when the upstream sends nothing for this long "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    drift = commands.add_parser(
        "drift", help="report where the mock answers a recording differently (PROTOCOL §9)"
    )
    drift.add_argument("file", metavar="FILE", help="a recording made by vesanor-mock record")
    _flag(drift, "scenario")
    _flag(drift, "scenario_dir")
    drift.add_argument("--json", action="store_true", help="print the report as JSON")
    docs = commands.add_parser("docs", help="print a documentation page shipped with the package")
    docs.add_argument("topic", nargs="?", help="a page, e.g. cli; without it, the list")
    for name, command in commands.choices.items():
        if command.epilog is None:
            command.epilog = where_documented(DOC_TOPIC.get(name, "cli"))
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


DOC_TOPIC = {
    "validate": "scenarios",
    "docs": "cli",
    "record": "record-replay",
    "drift": "record-replay",
    "coverage": "checks",
    "check": "checks",
}
"""The documentation page of each subcommand that is not described in `cli`."""


def where_documented(topic: str) -> str:
    """The --help line that says where the full text is, wherever the command is installed."""
    return (
        f"Documentation: `vesanor-mock docs {topic}` prints it (it ships with the package);\n"
        f"online: {DOCS_URL}/{topic}.md"
    )


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    """Entry point of the console script; answers the exit code."""
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace, Env], int]] = {
        "serve": serve,
        "validate": validate,
        "scenarios": scenarios,
        "verify": verify,
        "openapi": openapi,
        "export": export,
        "journal": journal_command,
        "docs": docs,
        "record": record,
        "drift": drift,
        "coverage": lambda args, env: checks_cli.coverage_command(args, _client(args, env)),
        "check": lambda args, env: checks_cli.check_command(args),
    }
    try:
        return commands[args.command](args, os.environ if env is None else env)
    except ConfigError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_USAGE


def serve(args: argparse.Namespace, env: Env) -> int:
    """Serve until SIGINT or SIGTERM; reload the scenario file when it changes."""
    values = resolve(vars(args), env, names=(*SERVE_OPTIONS, "reload"))
    folders = [values["scenario_dir"]] if "scenario_dir" in values else []
    try:
        path = find_scenario(values.get("scenario", DEFAULT_SCENARIO), folders)
        service = MockService(settings_from(values, scenario=str(path)))
    except ScenarioError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_FAILED
    settings = service.settings
    reload = bool(values.get("reload", True))
    watcher = ScenarioWatcher(service, path, _stderr).start() if reload else None
    try:
        with accesslog.configured(settings.log_format):
            started = serve_forever(service, lambda url: _started(service, url, reload))
    except ServerStartError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if watcher is not None:
            watcher.stop()
    return EXIT_OK if started else EXIT_FAILED


def _started(service: MockService, url: str, reload: bool) -> None:
    """Once bound: the banner, then the warning for a control API others can reach."""
    _say(banner(service, url, reload))
    settings = service.settings
    if service.scenario is not None:
        for warning in service.scenario.warnings:
            print(warning_line(warning, service.scenario.source), file=sys.stderr, flush=True)
    if not is_loopback(settings.host) and not settings.control_token:
        _stderr(exposed_warning(settings.host))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _say(message: str) -> None:
    print(message, flush=True)


def exposed_warning(host: str) -> str:
    """The warning for a server reachable from other machines with an open control API."""
    return (
        f"vesanor-mock: WARNING: bound to {host}, which other machines can reach; the /_mock "
        "control API has no token, so it answers this machine only (other peers get 403 "
        "CONTROL_FORBIDDEN). To drive it from other machines, set --control-token (or "
        "VESANOR_MOCK_CONTROL_TOKEN); to keep the API private too, bind 127.0.0.1."
    )


def banner(service: MockService, url: str, reload: bool) -> str:
    """The start-up banner: URLs, keys (only vsk_test_default in clear), scenario."""
    settings = service.settings
    keys = [(shown_key(key), tenant) for key, tenant in service.spec.api_keys.items()]
    scenario = service.scenario
    name, source = (scenario.name, scenario.source) if scenario else (None, None)
    replay = replay_line(service)
    if settings.log_format == "json":
        event = {
            "event": "listening",
            "url": url,
            "api_url": f"{url}/api/v1",
            "api_keys": [{"key": key, "tenant": tenant} for key, tenant in keys],
            "scenario": {"name": name, "source": source, "reload": reload},
            "control_token": settings.control_token is not None,
        }
        if replay is not None:
            event["replay"] = settings.replay
        return json.dumps(event)
    lines = [f"vesanor-mock {__version__} listening on {url}", f"  API base:  {url}/api/v1"]
    lines += [f"  API key:   {key} (tenant {tenant})" for key, tenant in keys]
    watched = ", reloaded when it changes" if reload else ""
    lines.append(f"  scenario:  {name} ({source}{watched})")
    if replay is not None:
        lines.append(f"  replay:    {replay}")
    guard = "needs the control token" if settings.control_token else "no token: loopback only"
    if not settings.control_token and not is_loopback(settings.host):
        guard += "; other machines get 403 until --control-token is set"
    lines.append(f"  control:   {url}/_mock ({guard})")
    lines.append(f"  OpenAPI:   {url}/openapi.json")
    return "\n".join(lines)


def replay_line(service: MockService) -> str | None:
    """What a replaying server answers from, for its banner; None when it does not replay."""
    replayer = service.alternate
    if not isinstance(replayer, Replayer):
        return None
    recording = replayer.replay.recording
    return (
        f"{recording.source} ({len(recording.exchanges)} exchange(s), answered in recorded "
        "order per session; a request not recorded: 409 REPLAY_MISMATCH)"
    )


def shown_key(key: str) -> str:
    """The public default test key in full; any other key masked, as in logs and exports."""
    return key if key == DEFAULT_API_KEY else mask(key)


def validate(args: argparse.Namespace, env: Env) -> int:
    """Load each file (or bundled name); print every problem and warning, file:line:col first."""
    failed = False
    for path in args.files:
        try:
            scenario = load_scenario(find_scenario(path))
        except ScenarioError as error:
            failed = True
            print(error.render())
        else:
            for warning in scenario.warnings:
                print(warning_line(warning, scenario.source))
            noted = f", {len(scenario.warnings)} warning(s)" if scenario.warnings else ""
            print(f"{path}: ok (scenario {scenario.name!r}{noted})")
    return EXIT_FAILED if failed else EXIT_OK


def warning_line(warning: ScenarioIssue, filename: str) -> str:
    """`file:line:col: warning: message (at /pointer)`."""
    where, _, rest = warning.render(filename).partition(": ")
    return f"{where}: warning: {rest}"


def scenarios(args: argparse.Namespace, env: Env) -> int:
    """List the bundled scenarios with their descriptions."""
    found = bundled_scenarios()
    width = max(len(item["name"]) for item in found)
    for item in found:
        print(f"{item['name']:<{width}}  {item['description']}")
    print(
        "\nUse one by name (serve --scenario NAME, validate NAME, the pytest marker), or "
        "build on it: a scenario file with `extends: NAME`. See docs/scenarios.md."
    )
    return EXIT_OK


def _client(args: argparse.Namespace, env: Env) -> MockClient:
    values = resolve(vars(args), env, names=("url", "control_token"))
    url = with_scheme(values.get("url", DEFAULT_URL))
    return MockClient(url, token=values.get("control_token"))


def with_scheme(url: str) -> str:
    """`127.0.0.1:8080` -> `http://127.0.0.1:8080`: a URL without a scheme is plain HTTP."""
    return url if "://" in url else f"http://{url}"


def verify(args: argparse.Namespace, env: Env) -> int:
    """Check expectations on a running mock; print a report; exit 0 only when all hold."""
    client = _client(args, env)
    expect = None
    if args.expect is not None:
        try:
            expect = read_expectations(args.expect)
        except ScenarioError as error:
            print(error.render(), file=sys.stderr)
            return EXIT_USAGE
    try:
        result = client.verify(expect, findings=args.findings)
        journal = client.journal()
    except ControlError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    evicted = journal[0]["seq"] - 1 if journal else 0
    if evicted:
        print(
            f"vesanor-mock: {evicted} entries were evicted from the journal (journal_limit); "
            "counts may be low",
            file=sys.stderr,
        )
    if result.ok and result.checked == 0 and not args.allow_empty:
        print(
            "vesanor-mock: nothing to verify: the loaded scenario has no `expect` and no "
            "--expect file was given (pass --allow-empty if that is intended)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if result.ok:
        if result.findings:  # warnings only
            print("\n".join(format_findings(result.findings, journal)))
        print(f"vesanor-mock: {result.checked} expectation(s) checked, all met")
        return EXIT_OK
    print(result.report())
    return EXIT_FAILED


def openapi(args: argparse.Namespace, env: Env) -> int:
    """Print the OpenAPI 3.1 document built from the schemas (also GET /openapi.json)."""
    print(json.dumps(build_openapi(SchemaRegistry.load()), indent=2, ensure_ascii=False))
    return EXIT_OK


def export(args: argparse.Namespace, env: Env) -> int:
    """Write a running mock's run as a scenario that replays it (stdout or `-o FILE`)."""
    client = _client(args, env)
    try:
        answer = client.export()
        journal = client.journal()
    except ControlError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    text = dump_scenario(answer["scenario"], export_header(client.url, answer, journal))
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(text)
    count = answer["journal"]["entries"]
    print(f"vesanor-mock: wrote {args.output} ({count} request(s))", file=sys.stderr)
    return EXIT_OK


def docs(args: argparse.Namespace, env: Env) -> int:
    """Print a shipped documentation page, or the list of pages with their titles."""
    topics = doc_topics()
    if args.topic in topics:
        sys.stdout.write(topics[args.topic].read_text(encoding="utf-8"))
        return EXIT_OK
    lines = [f"  {name:<14} {_title(page)}" for name, page in topics.items()]
    listing = "\n".join(["pages (vesanor-mock docs PAGE):", *lines])
    if args.topic is None:
        print(listing)
        return EXIT_OK
    print(f"vesanor-mock: no documentation page {args.topic!r}\n{listing}", file=sys.stderr)
    return EXIT_USAGE


def _title(page: Path) -> str:
    """A page's first heading."""
    with page.open(encoding="utf-8") as text:
        first = text.readline()
    return first.lstrip("# ").strip()


def journal_command(args: argparse.Namespace, env: Env) -> int:
    """Print the journal of a running mock, one line per request; `--follow` tails it."""
    client = _client(args, env)
    filters = {"endpoint": args.endpoint, "session_id": args.session}

    def show(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False) if args.json else journal_line(entry))
        sys.stdout.flush()

    try:
        last = client.state()["journal"]["total"] if args.follow else 0
        entries = client.digests(**filters)
        show(entries)
        if not args.follow:
            return EXIT_OK
        last = max([last, *(entry["seq"] for entry in entries)])
        generation = None
        for change in client.changes():
            if generation is not None and change["generation"] != generation:
                notice = "-- the run was reset or a scenario loaded: request ids restart --"
                print(notice, file=sys.stderr if args.json else sys.stdout)
                last = 0
            generation = change["generation"]
            if change["total"] > last:
                show(client.digests(since=last, **filters))
                last = change["total"]
    except ControlError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _mask(text: str) -> str:
    try:
        parse_mask(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most 3600 s, got {text}")
    return value


def record(args: argparse.Namespace, env: Env) -> int:
    """Serve /api/v1 as a recording proxy until SIGINT or SIGTERM."""
    values = resolve(vars(args), env, names=RECORD_OPTIONS)
    if "upstream" not in values:
        print("vesanor-mock record: --upstream URL is required", file=sys.stderr)
        return EXIT_USAGE
    try:
        recorder = Recorder(values["upstream"], args.output, args.mask, args.timeout)
    except OSError as exc:
        print(f"vesanor-mock: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    service = MockService(settings_from(values), alternate=recorder)
    settings = service.settings
    if not is_loopback(settings.host) and not settings.control_token:
        print(exposed_warning(settings.host), file=sys.stderr, flush=True)

    def ready(url: str) -> None:
        if settings.log_format == "json":
            event = {
                "event": "recording",
                "url": url,
                "api_url": f"{url}/api/v1",
                "upstream": recorder.upstream.url,
                "output": args.output,
            }
            _say(json.dumps(event))
            return
        _say(
            f"vesanor-mock {__version__} recording on {url}\n"
            f"  API base:  {url}/api/v1 -> {recorder.upstream.url}/api/v1\n"
            f"  writing:   {args.output} (keys and server-made values as placeholders)\n"
            f"  control:   {url}/_mock (local, not forwarded)"
        )

    try:
        with accesslog.configured(settings.log_format):
            started = serve_forever(service, ready)
    except ServerStartError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"vesanor-mock: wrote {args.output} ({recorder.count} exchange(s))", file=sys.stderr)
    return EXIT_OK if started else EXIT_FAILED


def drift(args: argparse.Namespace, env: Env) -> int:
    """Replay a recording's requests on a fresh mock; exit 1 when any answer differs."""
    values = resolve(vars(args), env, names=("scenario", "scenario_dir"))
    folders = [values["scenario_dir"]] if "scenario_dir" in values else []
    try:
        recording = load_recording(args.file)
    except RecordingError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_USAGE
    try:
        path = find_scenario(values.get("scenario", DEFAULT_SCENARIO), folders)
        service = MockService(settings_from({}, scenario=str(path), log_format="off"))
    except ScenarioError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_FAILED
    caller = InProcessCaller(service)
    try:
        with accesslog.configured("off"):
            report = run_drift(
                recording,
                caller.send,
                list(service.spec.api_keys),
                service.scenario.name if service.scenario else str(path),
            )
    finally:
        caller.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.text())
    return EXIT_OK if report.ok else EXIT_FAILED
