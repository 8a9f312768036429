"""Every `vesanor-mock ...` command the README and docs/ show is one the command line takes,
and the Python examples of docs/pytest.md pass under the plugin."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from vesanor_mock.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_END = re.compile(r"\s(?:>|2>|&&|\|\||;|&|#)(?:\s|$).*")
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]*\b|\[|\||\.\.\.")


def shown_commands(page: Path) -> list[tuple[int, str]]:
    """Every `vesanor-mock ...` command of a page: lines of shell blocks (with their
    continuation lines) and inline code spans, each with its line number."""
    found: list[tuple[int, str]] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    in_shell = False
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_shell = line.strip() in ("```sh", "```bash", "```console")
            continue
        if in_shell and line.lstrip("$ ").startswith("vesanor-mock "):
            command, at = line.lstrip("$ "), number
            while command.endswith("\\") or lines[at].startswith(" " * 10):
                command = command.rstrip("\\") + " " + lines[at].strip()
                at += 1
            found.append((number, command))
        elif not in_shell:
            found += [(number, span) for span in re.findall(r"`(vesanor-mock [^`]+)`", line)]
    return found


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def check(command: str) -> str | None:
    """None when the command line takes `command`, else what is wrong with it."""
    text = SHELL_END.sub("", command).strip()
    words = text.replace("[", " ").replace("]", " ").split()[1:]
    if not words or words[0].startswith("-"):
        return _parses(text) if words else "no command"
    parsers = subcommands()
    if words[0] == "COMMAND":  # the synopsis of every command
        return None
    if words[0] not in parsers:
        return f"no command {words[0]!r}"
    if PLACEHOLDER.search(text.split(" ", 2)[-1]) and words[1:]:
        known = {flag for action in parsers[words[0]]._actions for flag in action.option_strings}
        flags = {word.split("=")[0] for word in words[1:] if word.startswith("-")}
        return f"unknown flags {sorted(flags - known)}" if flags - known else None
    return _parses(text)


def _parses(text: str) -> str | None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _parser().parse_args(shlex.split(text)[1:])
    except SystemExit as stop:
        return None if stop.code == 0 else err.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_a_page_shows_is_taken_by_the_command_line(page: Path) -> None:
    wrong = [
        f"{page.name}:{number}: {command}: {problem}"
        for number, command in shown_commands(page)
        if (problem := check(command)) is not None
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checker_finds_commands_and_refuses_wrong_ones(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `vesanor-mock serve --port 0` and `vesanor-mock nope`.\n\n"
        "```sh\nvesanor-mock verify [--url URL] \\\n  [--bogus]\n"
        "vesanor-mock openapi > openapi.json\n```\n"
    )
    commands = shown_commands(page)
    assert [command for _, command in commands] == [
        "vesanor-mock serve --port 0",
        "vesanor-mock nope",
        "vesanor-mock verify [--url URL]  [--bogus]",
        "vesanor-mock openapi > openapi.json",
    ]
    problems = [check(command) for _, command in commands]
    assert problems[0] is None and problems[3] is None
    assert problems[1] == "no command 'nope'"
    assert problems[2] == "unknown flags ['--bogus']"
    assert check("vesanor-mock serve --log-format xml") is not None


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)


def test_the_pytest_docs_examples_pass_under_the_plugin(pytester: pytest.Pytester) -> None:
    blocks = python_blocks(ROOT / "docs" / "pytest.md")
    tests = [block for block in blocks if "def test_" in block]
    assert tests, "docs/pytest.md shows no test"
    for number, block in enumerate(tests):
        pytester.makepyfile(**{f"test_docs_example_{number}": block})
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    scripts = [block for block in blocks if "def test_" not in block]
    for block in scripts:
        exec(compile(block, "docs/pytest.md", "exec"), {})
