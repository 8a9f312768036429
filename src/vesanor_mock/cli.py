"""The `vesanor-mock` command line: serve, validate scenarios, verify a running mock."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import requests
import uvicorn

from .config import Settings
from .errors import ScenarioError
from .http.app import MockService, create_app
from .scenarios import fixtures_dir, load_scenario
from .server import _fast_stack

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_SCENARIO = "default.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vesanor-mock", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the mock server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.add_argument("--seed", type=int, default=0, help="seed for ids (default 0)")
    serve.add_argument("--validation", choices=("strict", "lenient", "off"), default="strict")
    serve.add_argument(
        "--scenario", help="scenario YAML file to load (default: the bundled default.yaml)"
    )
    serve.add_argument("--control-token", help="require this bearer token on /_mock")
    validate = commands.add_parser("validate", help="check scenario files, print every problem")
    validate.add_argument("files", nargs="+", help="scenario YAML or JSON files")
    verify = commands.add_parser("verify", help="check a running mock's expectations")
    verify.add_argument("--url", default="http://127.0.0.1:8080", help="the mock's base URL")
    verify.add_argument("--control-token", help="bearer token of the control API")
    return parser


def serve(args: argparse.Namespace) -> int:
    """Run the server in the foreground until interrupted."""
    scenario = args.scenario or str(fixtures_dir() / DEFAULT_SCENARIO)
    settings = Settings(
        host=args.host,
        port=args.port,
        seed=args.seed,
        validation=args.validation,
        scenario=scenario,
        control_token=args.control_token,
    )
    try:
        service = MockService(settings)
    except ScenarioError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_FAILED
    base = f"http://{settings.host}:{settings.port}"
    keys = "\n".join(
        f"  API key:  {key} (tenant {tenant})" for key, tenant in service.spec.api_keys.items()
    )
    name = service.scenario.name if service.scenario else "none"
    print(
        f"vesanor-mock listening on {base}\n  API base: {base}/api/v1\n{keys}\n"
        f"  scenario: {name} ({scenario})\n  control:  {base}/_mock",
        flush=True,
    )
    app = create_app(service=service)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", **_fast_stack())
    return EXIT_OK


def validate(args: argparse.Namespace) -> int:
    """Load each file; print `file: ok` or every problem, file:line:col first."""
    failed = False
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            failed = True
            print(error.render())
        else:
            print(f"{path}: ok (scenario {scenario.name!r})")
    return EXIT_FAILED if failed else EXIT_OK


def verify(args: argparse.Namespace) -> int:
    """POST /_mock/verify on a running mock; print each failure; exit 1 if any."""
    headers = {"Authorization": f"Bearer {args.control_token}"} if args.control_token else {}
    try:
        response = requests.post(f"{args.url}/_mock/verify", headers=headers, timeout=10)
    except requests.RequestException as exc:
        print(f"cannot reach {args.url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if response.status_code != 200:
        print(f"verify answered {response.status_code}: {response.text}", file=sys.stderr)
        return EXIT_FAILED
    result = response.json()
    for failure in result["failures"]:
        print(failure["message"])
    print(f"{result['checked']} expectation(s) checked, {len(result['failures'])} failed")
    return EXIT_OK if result["ok"] else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    commands = {"serve": serve, "validate": validate, "verify": verify}
    command = commands.get(args.command)
    if command is None:
        print(f"unknown command {args.command}", file=sys.stderr)
        return EXIT_USAGE
    return command(args)
