"""`vesanor-mock docs` and the --help of every command point at documentation that exists
where the command is installed."""

from __future__ import annotations

import argparse
import re

import pytest

from vesanor_mock.cli import EXIT_OK, EXIT_USAGE, _parser, main
from vesanor_mock.data import doc_topics


def subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_help_names_a_documentation_page_that_the_docs_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    helps = {"": _parser().format_help()}
    helps.update({name: parser.format_help() for name, parser in subcommands().items()})
    for name, text in helps.items():
        named = re.findall(r"`vesanor-mock docs (\w[\w-]*)`", text)
        assert named, f"--help of {name or 'vesanor-mock'} names no documentation page"
        assert main(["docs", named[0]]) == EXIT_OK
        printed = capsys.readouterr().out
        assert printed == doc_topics()[named[0]].read_text(encoding="utf-8")
        assert "See docs/" not in text


def test_docs_without_a_page_lists_every_page_with_its_title(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["docs"]) == EXIT_OK
    listing = capsys.readouterr().out
    assert "  cli            The command line" in listing
    assert all(f"  {topic} " in listing for topic in doc_topics())


def test_docs_of_an_unknown_page_is_a_usage_error_that_lists_the_pages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["docs", "nope"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no documentation page 'nope'" in err and "  pytest " in err
