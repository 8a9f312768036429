"""`record`, `serve --replay` and `drift` from the command line, and docs/record-replay.md's
examples run as written (PROTOCOL §9)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vesanor_mock.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from vesanor_mock.recording.format import dumps, parse_recording
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .recordclient import Client, whole_run
from .test_cli_serve import Served
from .test_record_replay import UPSTREAM, UPSTREAM_KEY

DOC = Path(__file__).resolve().parents[1] / "docs" / "record-replay.md"


def blocks(language: str) -> list[str]:
    """Every fenced block of a language in docs/record-replay.md, in order."""
    text = DOC.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def free_port() -> int:
    """A port free right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Shell(Served):
    """A documented shell line run by bash, its output read line by line."""

    def __init__(self, line: str, cwd: Path, env: dict[str, str]) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("VESANOR_MOCK_")}
        bindir = str(Path(sys.executable).parent)
        full = {**clean, **env, "PATH": bindir + os.pathsep + clean.get("PATH", "")}
        self.process = subprocess.Popen(
            ["bash", "-c", "exec " + line],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=full,
        )
        self._pump()

    def _pump(self) -> None:
        import queue
        import threading

        from .test_cli_serve import _pump

        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()


@pytest.fixture
def shells() -> Iterator[list[Shell]]:
    """Processes started by a test, killed if it left them running."""
    started: list[Shell] = []
    yield started
    for one in started:
        if one.process.poll() is None:
            one.process.kill()
            one.process.wait(5)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[MockServer]:
    """The stand-in runtime (see test_record_replay.py)."""
    path = tmp_path / "upstream.yaml"
    path.write_text(UPSTREAM, encoding="utf-8")
    with MockServer(scenario=path) as running:
        yield running


def test_the_documented_record_replay_and_drift_commands_work_as_written(
    upstream: MockServer, tmp_path: Path, shells: list[Shell]
) -> None:
    record_line, serve_line, drift_line = (b.strip() for b in blocks("sh"))
    (tmp_path / "recordings").mkdir()
    port = free_port()
    env = {"VESANOR_API_URL": upstream.url, "VESANOR_MOCK_PORT": str(port)}
    recorder = Shell(record_line, tmp_path, env)
    shells.append(recorder)
    banner = recorder.read(recorder.out, "control:", timeout=60)
    assert banner[0].endswith(f"recording on http://127.0.0.1:{port}")
    assert f"-> {upstream.url}/api/v1" in banner[1]
    recorded = whole_run(Client(f"http://127.0.0.1:{port}", UPSTREAM_KEY))
    assert recorder.stop(signal.SIGINT) == 0
    assert recorder.read(recorder.err, "wrote", timeout=60)[-1] == (
        f"vesanor-mock: wrote recordings/refunds.json ({len(recorded)} exchange(s))"
    )
    text = (tmp_path / "recordings" / "refunds.json").read_text(encoding="utf-8")
    assert UPSTREAM_KEY not in text and '"masks": [\n    "/metadata/card"\n  ]' in text

    port = free_port()
    replay = Shell(serve_line, tmp_path, {"VESANOR_MOCK_PORT": str(port)})
    shells.append(replay)
    shown = replay.read(replay.out, "OpenAPI:", timeout=60)
    assert f"  replay:    recordings/refunds.json ({len(recorded)} exchange(s), answered in " in (
        "\n".join(shown)
    )
    assert whole_run(Client(f"http://127.0.0.1:{port}", UPSTREAM_KEY)) == recorded
    assert replay.stop(signal.SIGTERM) == 0

    drift = subprocess.run(
        ["bash", "-c", drift_line],
        cwd=tmp_path,
        env={
            **os.environ,
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert drift.returncode == EXIT_FAILED, drift.stderr
    lines = drift.stdout.splitlines()
    assert lines[0] == (
        f"vesanor-mock drift: recordings/refunds.json against scenario default: 5 of "
        f"{len(recorded)} exchange(s) differ"
    )
    assert '    /body/decision: recorded "block", mock "allow"' in lines
    assert "    /status: recorded 503, mock 200" in lines
    assert '    /body/error/code: recorded "SERVICE_UNAVAILABLE", mock absent' in lines

    python = blocks("python")[0]
    seen: list[str] = []
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(python, {"run_my_sdk_tests": lambda base_url: seen.append(base_url)})
    finally:
        os.chdir(cwd)
    assert len(seen) == 1 and seen[0].endswith("/api/v1")


def test_the_documented_recording_and_mismatch_follow_their_schemas() -> None:
    registry = SchemaRegistry.load()
    recording = json.loads(blocks("json")[0])
    assert registry.validate("recording", recording) == []
    mismatch = json.loads(blocks("json")[1])
    assert registry.validate("responses/error", mismatch) == []
    assert mismatch["error"]["code"] == "REPLAY_MISMATCH"


def test_record_refuses_an_upstream_that_is_not_a_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("runtime.example.com", "ftp://runtime.example.com", "http://h/?key=x"):
        with pytest.raises(SystemExit) as exited:
            main(["record", "--upstream", bad, "-o", str(tmp_path / "x.json")])
        assert exited.value.code == EXIT_USAGE
        assert "argument --upstream:" in capsys.readouterr().err
    assert main(["record", "-o", str(tmp_path / "x.json")], env={}) == EXIT_USAGE
    assert "--upstream URL is required" in capsys.readouterr().err
    env = {"VESANOR_MOCK_UPSTREAM": "not a url"}
    assert main(["record", "-o", str(tmp_path / "x.json")], env=env) == EXIT_USAGE
    assert "VESANOR_MOCK_UPSTREAM: expected an http:// or https:// URL" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_record_refuses_a_mask_that_is_not_a_json_pointer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["record", "--upstream", "http://h", "-o", "x.json", "--mask", "metadata"])
    assert exited.value.code == EXIT_USAGE
    assert "a mask is a JSON Pointer" in capsys.readouterr().err


def recording(*exchanges: dict[str, Any]) -> str:
    """A recording's text."""
    return dumps(
        {
            "format": "vesanor-mock-recording",
            "version": 1,
            "masks": [],
            "exchanges": list(exchanges),
        }
    )


PLAN = {
    "seq": 1,
    "endpoint": "governance_plan",
    "request": {
        "method": "GET",
        "path": "/api/v1/governance/plan",
        "query": {"agent": "refund-bot", "environment": "development"},
        "auth": "{{key_1}}",
    },
    "response": {
        "status": 200,
        "headers": {"content-type": "application/json", "x-request-id": "{{req_1}}"},
        "body": {
            "agent": "refund-bot",
            "environment": "development",
            "status": "no_plan",
            "plan_id": None,
            "draft": None,
            "approved": None,
        },
    },
}


def test_drift_exits_0_without_drift_and_1_with_it_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(recording(PLAN), encoding="utf-8")
    assert main(["drift", str(path)]) == EXIT_OK, capsys.readouterr().out
    assert "no drift" in capsys.readouterr().out
    changed = json.loads(json.dumps(PLAN))
    changed["response"]["body"]["status"] = "approved"  # what the runtime said, say
    path.write_text(recording(changed), encoding="utf-8")
    assert main(["drift", str(path), "--json"]) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] == 1 and report["compared"] == 1 and report["skipped"] == []
    assert report["drift"][0]["differences"] == [
        {"path": "/body/status", "expected": "approved", "received": "no_plan"}
    ]


def test_drift_and_serve_refuse_a_recording_that_does_not_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(recording(PLAN).replace('"version": 1', '"version": 9'), encoding="utf-8")
    assert main(["drift", str(path)]) == EXIT_USAGE
    assert f"{path}:3:14: unsupported recording version 9" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--replay", str(path)], env={}) == EXIT_FAILED
    assert f"{path}:3:14: unsupported recording version 9" in capsys.readouterr().err
    with pytest.raises(Exception, match="unsupported recording version 9"):
        MockServer(replay=path)


def test_a_written_recording_round_trips_through_the_loader() -> None:
    assert parse_recording(recording(PLAN)).exchanges[0].endpoint == "governance_plan"


def test_the_pytest_plugin_replays_a_recording_given_as_an_option(
    pytester: pytest.Pytester,
) -> None:
    later = json.loads(json.dumps(PLAN))
    later["seq"] = 2
    later["response"]["body"]["status"] = "approved"
    (pytester.path / "plan.json").write_text(recording(PLAN, later), encoding="utf-8")
    pytester.makepyfile(
        """
        import requests

        def ask(mock):
            return requests.get(
                mock.api_url + "/governance/plan",
                params={"agent": "refund-bot", "environment": "development"},
                headers={"Authorization": "Bearer vsk_test_default"},
                timeout=10,
            ).json()["status"]

        def test_first(vesanor_mock):
            assert ask(vesanor_mock) == "no_plan"

        def test_second_after_a_reset(vesanor_mock):
            assert ask(vesanor_mock) == "approved"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--vesanor-mock-replay=plan.json")
    result.assert_outcomes(passed=2)


def test_record_prints_a_json_banner_with_log_format_json(
    tmp_path: Path, shells: list[Shell]
) -> None:
    port = free_port()
    line = "vesanor-mock record --upstream http://127.0.0.1:9 -o out.json --log-format json"
    recorder = Shell(line, tmp_path, {"VESANOR_MOCK_PORT": str(port)})
    shells.append(recorder)
    banner = json.loads(recorder.read(recorder.out, "recording", timeout=60)[-1])
    assert banner == {
        "event": "recording",
        "url": f"http://127.0.0.1:{port}",
        "api_url": f"http://127.0.0.1:{port}/api/v1",
        "upstream": "http://127.0.0.1:9",
        "output": "out.json",
    }
    assert recorder.stop(signal.SIGTERM) == 0
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["exchanges"] == []
