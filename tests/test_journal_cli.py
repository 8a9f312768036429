"""`vesanor-mock journal`: the run in the terminal, one line per request, live with --follow."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from vesanor_mock.cli import EXIT_OK, EXIT_UNREACHABLE, main
from vesanor_mock.server import MockServer

from . import dashrun

CLI_MD = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.fixture(scope="module")
def demo() -> Iterator[MockServer]:
    with MockServer() as server:
        dashrun.drive(server.url)
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["journal", *argv], env={})
    return code, capsys.readouterr().out.splitlines()


def test_the_journal_prints_one_line_per_request_oldest_first(
    demo: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(capsys, "--url", demo.url)
    assert code == EXIT_OK
    assert len(lines) == 12
    assert [line.split()[1] for line in lines] == [f"req_{n:06d}" for n in range(1, 13)]
    assert lines[3].endswith(
        "receipts session refund-1 -> dropped rules lose-the-answer "
        "faults dropped,after-commit [dropped]"
    )
    assert "-> 409 SESSION_KILLED" in lines[-1]


def test_the_line_in_docs_cli_md_is_what_the_command_prints(
    demo: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    section = text[text.index("## journal") :]
    example = re.search(r"```text\n(.*?)\n```", section, re.DOTALL)
    assert example is not None
    _, lines = run(capsys, "--url", demo.url)
    assert example.group(1) in lines


def test_session_and_endpoint_filters_narrow_the_lines(
    demo: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = run(capsys, "--url", demo.url, "--session", "researcher-1")
    assert len(lines) == 1 and "create_session session researcher-1 -> 201" in lines[0]
    _, lines = run(capsys, "--url", demo.url, "--endpoint", "proposals")
    assert len(lines) == 2
    assert "(verify_customer: allow)" in lines[0]
    assert "block (issue_refund: block refunds_frozen)" in lines[1]


def test_json_prints_each_entry_with_its_digest(
    demo: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = run(capsys, "--url", demo.url, "--json", "--endpoint", "offer_handoff")
    [entry] = [json.loads(line) for line in lines]
    assert entry["digest"]["handoff"]["to_role"] == "researcher"
    assert "response_body" not in entry


def test_a_mock_that_does_not_answer_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["journal", "--url", "http://127.0.0.1:9"], env={})
    assert code == EXIT_UNREACHABLE
    assert "cannot reach the mock" in capsys.readouterr().err


def test_follow_prints_new_requests_live_and_says_when_ids_restart() -> None:
    with MockServer() as server:
        api = dashrun.Driver(server.url)
        api.get("/replay/sessions/before")
        command = [sys.executable, "-m", "vesanor_mock", "journal", "--url", server.url]
        process = subprocess.Popen(
            [*command, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        try:
            wait_until(lambda: any("sessions/before" in x or "before" in x for x in lines))
            api.get("/replay/sessions/after")
            wait_until(lambda: any("session after" in x for x in lines))
            requests.post(server.url + "/_mock/reset", timeout=5)
            api.get("/replay/sessions/again")
            wait_until(lambda: any("session again" in x for x in lines))
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(10)
        assert code == 0
        text = "".join(lines)
        assert "req_000001 #1 get_session session before -> 404 SESSION_NOT_FOUND" in text
        assert "req_000002 #2 get_session session after" in text
        assert "request ids restart" in text
        assert "req_000001 #1 get_session session again" in text


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")
