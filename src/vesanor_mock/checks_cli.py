"""`vesanor-mock coverage` and `vesanor-mock check`: the client checks from the command line.

- `coverage --url URL [--json | --html PATH] [--min P]` reads a running mock's coverage.
- `check FILE` computes findings and coverage offline from a saved journal: the JSON of
  `GET /_mock/journal` (`{"entries": [...]}`), a JSON list of entries, or the JSON Lines of
  `vesanor-mock journal --json`. A scenario export (`vesanor-mock export`) keeps no bodies,
  so it cannot be checked: the error says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .catalogue import catalogue
from .client import ControlError, MockClient, format_findings
from .coverage_report import below, html_page, summary_lines
from .domain.checker import check_entries
from .domain.coverage import Coverage, report
from .schemas import SchemaRegistry

Env = Mapping[str, str]
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
MAX_BYTES = 256 * 1024 * 1024


def percentage(text: str) -> float:
    """A --min value: a number from 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text!r}")
    return value


def add_parsers(commands: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The `coverage` and `check` subcommands (the caller adds --url and --control-token)."""
    coverage = commands.add_parser(
        "coverage", help="print which situations a running mock's clients met (PROTOCOL §7.2)"
    )
    shown = coverage.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the report as JSON")
    shown.add_argument("--html", metavar="PATH", help="also write the report as an HTML page")
    coverage.add_argument(
        "--min", type=percentage, metavar="P", help="exit 1 when coverage is below P percent"
    )
    check = commands.add_parser(
        "check", help="findings and coverage of a saved journal, offline (docs/checks.md)"
    )
    check.add_argument(
        "file", metavar="FILE", help="GET /_mock/journal's JSON, or vesanor-mock journal --json"
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    return coverage, check


def coverage_command(args: argparse.Namespace, client: MockClient) -> int:
    """Print (or write) a running mock's coverage; exit 1 under --min."""
    try:
        answer = client.coverage()
    except ControlError as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print("\n".join(summary_lines(answer)))
    if args.html:
        Path(args.html).write_text(html_page(answer), encoding="utf-8")
        print(f"vesanor-mock: coverage written to {args.html}", file=sys.stderr)
    failed = below(answer, args.min)
    if failed:
        print(f"vesanor-mock: {failed}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


class NotAJournal(ValueError):
    """The file is not a saved journal; the message says what was expected and where."""


def read_entries(path: str) -> list[dict[str, Any]]:
    """The journal entries of a saved journal, validated against the journal's schema."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise NotAJournal(f"{path}: cannot read it ({error.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise NotAJournal(f"{path}: over {MAX_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as error:
        document = _json_lines(path, text, error)
    if isinstance(document, dict) and "scenario" in document and "entries" not in document:
        raise NotAJournal(_export_hint(path))
    if isinstance(document, dict):
        document = document.get("entries")
    if not isinstance(document, list):
        raise NotAJournal(
            f'{path}: expected a journal (the JSON of GET /_mock/journal: {{"entries": [...]}}, '
            "a list of entries, or the lines of vesanor-mock journal --json)"
        )
    entries = [
        {k: v for k, v in e.items() if k != "digest"} if isinstance(e, dict) else e
        for e in document
    ]
    problems = SchemaRegistry.load().validate("control/journal", {"entries": entries})
    if problems:
        first = problems[0]
        raise NotAJournal(f"{path}: not a journal entry at {first.path}: {first.message}")
    return entries


def _json_lines(path: str, text: str, error: json.JSONDecodeError) -> list[Any]:
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].lstrip().startswith(("scenario:", "#")):
        raise NotAJournal(_export_hint(path))
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as bad:
            where = (
                f"line {number}, column {bad.colno}"
                if len(lines) > 1
                else (f"line {error.lineno}, column {error.colno}")
            )
            raise NotAJournal(f"{path}:{where}: not JSON ({bad.msg})") from None
    return entries


def _export_hint(path: str) -> str:
    return (
        f"{path}: this is a scenario export (vesanor-mock export), which keeps no request "
        "bodies; check the journal instead: save GET /_mock/journal, or the output of "
        "vesanor-mock journal --json"
    )


def check_command(args: argparse.Namespace) -> int:
    """Findings and coverage of a saved journal; exit 1 on an error finding."""
    try:
        entries = read_entries(args.file)
    except NotAJournal as error:
        print(f"vesanor-mock: {error}", file=sys.stderr)
        return EXIT_USAGE
    checker, notes = check_entries(entries)
    found = [f.to_dict() for f in checker.findings()]
    coverage = Coverage()
    for note in notes:
        coverage.observe(note)
    covered = report(catalogue(), coverage.seen())
    if args.json:
        answer = {"findings": found, "checked_requests": checker.checked, "coverage": covered}
        print(json.dumps(answer, indent=2))
    else:
        if found:
            print("\n".join(format_findings(found, entries)))
        else:
            print(f"vesanor-mock: {checker.checked} request(s) checked, no findings")
        print("\n".join(summary_lines(covered)))
    return EXIT_FAILED if any(f["severity"] == "error" for f in found) else EXIT_OK
