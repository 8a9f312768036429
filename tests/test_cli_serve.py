"""`vesanor-mock serve` as a real process: banner, access log, env, signals, hot reload."""

from __future__ import annotations

import io
import json
import logging
import os
import queue
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

from vesanor_mock.cli import EXIT_FAILED, EXIT_USAGE, main
from vesanor_mock.http import accesslog
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.server import MockServer

AUTH = {"Authorization": "Bearer vsk_test_default"}
SECRET = "acme_live_key_0123456789"


class Served:
    """A `python -m vesanor_mock serve` process, its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("VESANOR_MOCK_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vesanor_mock", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, **(env or {})},
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()

    def read(self, lines: queue.Queue[str], until: str, timeout: float = 10) -> list[str]:
        """Lines up to and including the first that contains `until`."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not seen or until not in seen[-1]:
            try:
                seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line with {until!r} in {seen}") from None
        return seen

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send a signal; answer the exit code."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=10)


def _pump(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.rstrip("\n"))


@pytest.fixture
def served() -> Iterator[list[Served]]:
    """Processes started by a test, killed if it left them running."""
    started: list[Served] = []
    yield started
    for one in started:
        if one.process.poll() is None:
            one.process.kill()
            one.process.wait(5)


def start(served: list[Served], args: list[str], env: dict[str, str] | None = None) -> Served:
    """Start a server process and remember it."""
    one = Served(args, env)
    served.append(one)
    return one


def url_of(banner_line: str) -> str:
    """The URL in `vesanor-mock X listening on URL`."""
    return banner_line.rsplit(" ", 1)[1]


def test_serve_prints_a_banner_logs_each_request_and_exits_0_on_sigterm(
    served: list[Served],
) -> None:
    server = start(served, ["--port", "0", "--scenario", "forced-block"])
    banner = server.read(server.out, "OpenAPI:")
    url = url_of(banner[0])
    assert banner[1:] == [
        f"  API base:  {url}/api/v1",
        "  API key:   vsk_test_default (tenant default)",
        f"  scenario:  forced-block ({fixtures_dir() / 'forced-block.yaml'}, "
        "reloaded when it changes)",
        f"  control:   {url}/_mock (no token: loopback only)",
        f"  OpenAPI:   {url}/openapi.json",
    ]
    assert url.startswith("http://127.0.0.1:")
    assert requests.get(url + "/_mock/health", timeout=5).json()["scenario"] == "forced-block"
    requests.get(url + "/api/v1/replay/sessions/nope", headers=AUTH, timeout=5)
    line = server.read(server.out, "/api/v1/replay/sessions/nope")[-1]
    assert "GET /api/v1/replay/sessions/nope 404 session=nope error=SESSION_NOT_FOUND" in line
    assert "(handled, " in line and line.endswith("req_000001")
    assert server.stop(signal.SIGTERM) == 0


def test_every_flag_can_come_from_the_environment_and_sigint_exits_0(
    served: list[Served],
) -> None:
    env = {
        "VESANOR_MOCK_PORT": "0",
        "VESANOR_MOCK_SCENARIO": "outage-503",
        "VESANOR_MOCK_LOG_FORMAT": "json",
        "VESANOR_MOCK_CONTROL_TOKEN": "s3cret",
        "VESANOR_MOCK_SEED": "9",
        "VESANOR_MOCK_RELOAD": "off",
    }
    server = start(served, [], env)
    banner = json.loads(server.read(server.out, '"event": "listening"')[-1])
    assert banner["scenario"]["name"] == "outage-503"
    assert banner["scenario"]["reload"] is False
    assert banner["control_token"] is True
    assert banner["api_keys"] == [{"key": "vsk_test_default", "tenant": "default"}]
    url = banner["url"]
    assert requests.get(url + "/_mock/health", timeout=5).status_code == 401
    token = {"Authorization": "Bearer s3cret"}
    assert requests.get(url + "/_mock/health", headers=token, timeout=5).status_code == 200
    requests.get(url + "/api/v1/governance/plan?agent=a", headers=AUTH, timeout=5)
    record = json.loads(server.read(server.out, "governance/plan")[-1])
    assert record["logger"] == "vesanor_mock.access"
    assert (record["endpoint"], record["status"], record["outcome"]) == (
        "governance_plan",
        503,
        "raw",
    )
    assert record["rules_fired"] == ["outage"] and record["request_id"] == "req_000001"
    assert "s3cret" not in json.dumps(banner) + json.dumps(record)
    assert server.stop(signal.SIGINT) == 0


def test_a_flag_wins_over_its_environment_variable(served: list[Served]) -> None:
    server = start(served, ["--port", "0", "--scenario", "default"], {"VESANOR_MOCK_PORT": "1"})
    url = url_of(server.read(server.out, "listening on")[0])
    assert requests.get(url + "/_mock/health", timeout=5).json()["scenario"] == "default"
    assert server.stop() == 0


def test_binding_beyond_loopback_without_a_token_warns(served: list[Served]) -> None:
    open_server = start(served, ["--host", "0.0.0.0", "--port", "0", "--no-reload"])
    warning = open_server.read(open_server.err, "WARNING")[-1]
    assert "bound to 0.0.0.0" in warning and "--control-token" in warning
    open_server.read(open_server.out, "listening on")
    assert open_server.stop() == 0
    guarded = start(served, ["--host", "0.0.0.0", "--port", "0", "--control-token", "t"])
    guarded.read(guarded.out, "listening on")
    assert guarded.stop() == 0
    assert guarded.err.empty()


def test_a_changed_scenario_is_reloaded_and_a_broken_one_keeps_the_last_good(
    served: list[Served], tmp_path: Path
) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(f"scenario: first\ntenants: [{{name: acme, api_keys: [{SECRET}]}}]\n")
    server = start(served, ["--port", "0", "--scenario", str(path)])
    banner = server.read(server.out, "OpenAPI:")
    url = url_of(banner[0])
    assert banner[2] == "  API key:   acme_l…6789 (tenant acme)"
    assert SECRET not in "\n".join(banner)
    path.write_text("scenario: second-version\n")
    reloaded = server.read(server.err, "reloaded")[-1]
    assert (
        reloaded
        == f"vesanor-mock: {path} changed: reloaded scenario 'second-version' (all state reset)"
    )
    assert requests.get(url + "/_mock/health", timeout=5).json()["scenario"] == "second-version"
    path.write_text("scenario: third\nseed: lots\n")
    said = server.read(server.err, "(at /seed)")
    assert said[-2:] == [
        f"vesanor-mock: {path} changed but does not load; keeping the last good scenario "
        "'second-version' (health: degraded):",
        f"{path}:2:7: expected integer, got string (at /seed)",
    ]
    assert requests.get(url + "/_mock/health", timeout=5).json()["scenario"] == "second-version"
    assert server.stop() == 0


def test_serve_refuses_a_bad_environment_value_and_a_taken_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve"], env={"VESANOR_MOCK_PORT": "eighty"}) == EXIT_USAGE
    assert "VESANOR_MOCK_PORT: expected a port number, got 'eighty'" in capsys.readouterr().err
    with MockServer() as taken:
        port = str(taken.port)
        assert main(["serve", "--port", port, "--no-reload"], env={}) == EXIT_FAILED
    assert f"cannot bind 127.0.0.1:{port}" in capsys.readouterr().err
    mock_logger = logging.getLogger("vesanor_mock")
    assert mock_logger.handlers == [] and mock_logger.propagate  # nothing left behind


def test_json_log_lines_carry_the_access_fields_or_the_message() -> None:
    stream = io.StringIO()
    with accesslog.configured("json", stream):
        with MockServer() as server:
            requests.get(server.url + "/api/v1/replay/sessions/x", headers=AUTH, timeout=5)
        logging.getLogger("vesanor_mock").error("boom")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["error"] == "SESSION_NOT_FOUND" and first["session_id"] == "x"
    assert first["time"].endswith("Z") and first["level"] == "info"
    assert (second["level"], second["message"]) == ("error", "boom")
    assert not logging.getLogger("vesanor_mock.access").isEnabledFor(logging.INFO)


def test_an_unknown_scenario_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--scenario", "no-such-story"], env={}) == EXIT_FAILED
    assert "no-such-story: no such file, and no scenario of that name" in capsys.readouterr().err


def test_the_access_log_lines_in_the_cli_docs_have_the_real_shape() -> None:
    stream = io.StringIO()
    with accesslog.configured("text", stream), MockServer() as server:
        requests.get(server.url + "/api/v1/replay/sessions/nope", headers=AUTH, timeout=5)
    real = stream.getvalue().splitlines()[0]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    shown = re.search(r"\*\*The access log\*\*.*?```text\n(.*?)```", docs, re.DOTALL)
    assert shown is not None
    documented = shown.group(1).splitlines()
    assert (
        documented[-1].split(" ", 1)[1].split(" (handled")[0]
        == (real.split(" ", 1)[1].split(" (handled")[0])
    )
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    assert all(re.match(stamp, line) for line in [real, *documented])


def test_a_host_that_is_no_address_is_a_usage_error_before_any_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--host", "999.1.1.1", "--no-reload"], env={})
    assert stopped.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "argument --host: expected an IP address or a host name, got '999.1.1.1'" in err
    assert "WARNING" not in err


def test_an_address_of_another_machine_fails_to_bind_without_claiming_it_was_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--host", "192.0.2.1", "--port", "0", "--no-reload"], env={}) == (
        EXIT_FAILED
    )
    err = capsys.readouterr().err
    assert "cannot bind 192.0.2.1:0" in err and "bound to" not in err
