"""The `vesanor-mock` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from .config import Settings
from .domain.world import DEFAULT_API_KEY
from .http.app import create_app
from .server import _fast_stack

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vesanor-mock", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the mock server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.add_argument("--seed", type=int, default=0, help="seed for ids (default 0)")
    serve.add_argument("--validation", choices=("strict", "lenient", "off"), default="strict")
    serve.add_argument("--scenario", help="scenario YAML file to load")
    return parser


def serve(args: argparse.Namespace) -> int:
    """Run the server in the foreground until interrupted."""
    settings = Settings(host=args.host, port=args.port, seed=args.seed, validation=args.validation)
    app = create_app(settings)
    print(
        f"vesanor-mock listening on http://{settings.host}:{settings.port}\n"
        f"  API base: http://{settings.host}:{settings.port}/api/v1\n"
        f"  API key:  {DEFAULT_API_KEY} (tenant default)",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", **_fast_stack())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    print(f"unknown command {args.command}", file=sys.stderr)
    return EXIT_USAGE
