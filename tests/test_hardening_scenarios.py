"""Hardening against what a scenario can script (issue 10, PROTOCOL.md §5, §8): raw answer
headers HTTP cannot carry, and delays stacked rule upon rule."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from vesanor_mock.cli import main
from vesanor_mock.config import Settings
from vesanor_mock.errors import ScenarioError
from vesanor_mock.http.app import MockService
from vesanor_mock.scenarios import load_scenario
from vesanor_mock.scenarios.reading import read_bounded
from vesanor_mock.server import MockServer
from vesanor_mock.watch import ScenarioWatcher

from .apiclient import Api


def post(api: Api, scenario: dict[str, Any]) -> requests.Response:
    return requests.post(api.base_url + "/_mock/scenario", json=scenario, timeout=10)


def respond_rule(value: str) -> dict[str, Any]:
    return {
        "scenario": "headers",
        "rules": [
            {
                "when": {"endpoint": "get_session"},
                "then": {"respond": {"status": 200, "headers": {"X-A": value}}},
            }
        ],
    }


@pytest.mark.parametrize("value", ["caf\u00e9 \u20ac", "a\x00b", "a\x0bb", "a\x7fb", "\u0085"])
def test_a_raw_answer_header_http_cannot_carry_is_refused_at_load(
    api: Api, server: MockServer, value: str
) -> None:
    before = requests.get(api.base_url + "/_mock/state", timeout=5).json()
    response = post(api, respond_rule(value))
    assert response.status_code == 422, response.text
    issues = response.json()["error"]["details"]["issues"]
    assert any(i["path"] == "/rules/0/then/respond/headers/X-A" for i in issues), issues
    assert requests.get(api.base_url + "/_mock/state", timeout=5).json() == before
    runtime = requests.post(
        api.base_url + "/_mock/rules", json={"rules": respond_rule(value)["rules"]}, timeout=5
    )
    assert runtime.status_code == 422


def test_latin1_and_tabs_are_fine_in_a_raw_answer_header(api: Api, server: MockServer) -> None:
    assert post(api, respond_rule("caf\u00e9\tok")).status_code == 200
    response = api.http.get(
        api.base_url + "/api/v1/replay/sessions/x",
        headers={"Authorization": "Bearer vsk_test_default"},
        timeout=5,
    )
    assert response.headers["X-A"].encode("latin-1") == "caf\u00e9\tok".encode("latin-1")
    assert post(api, {"scenario": "back"}).status_code == 200
    server.check()


def stacked(count: int, each_ms: int, cap: int | None) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"when": {"endpoint": "get_session"}, "then": {"delay_ms": each_ms}} for _ in range(count)
    ]
    rules.append(
        {"when": {"endpoint": "get_session"}, "then": {"after_commit": {"delay_ms": each_ms}}}
    )
    scenario: dict[str, Any] = {"scenario": "slow", "rules": rules}
    if cap is not None:
        scenario["options"] = {"max_delay_ms": cap}
    return scenario


def timed_get(api: Api) -> float:
    started = time.perf_counter()
    response = api.call("get_session", "GET", "/replay/sessions/x")
    assert response.status_code == 404
    return time.perf_counter() - started


def test_stacked_delays_are_capped_in_total_before_and_after_commit(api: Api) -> None:
    assert post(api, stacked(4, 300, cap=200)).status_code == 200
    assert timed_get(api) < 0.9  # 1.5 s of delays asked for, 0.2 s allowed
    assert post(api, stacked(1, 300, cap=None)).status_code == 200
    assert timed_get(api) >= 0.55  # under the default cap, every delay is served
    assert post(api, {"scenario": "back"}).status_code == 200


def test_the_delay_cap_is_a_documented_option_with_a_bound(api: Api) -> None:
    response = post(api, {"scenario": "x", "options": {"max_delay_ms": 86_400_001}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["issues"][0]["path"] == "/options/max_delay_ms"


def test_verify_says_when_the_journal_evicted_the_requests_it_would_count(api: Api) -> None:
    scenario = {
        "scenario": "short-memory",
        "options": {"journal_limit": 2},
        "expect": [{"endpoint": "get_session", "count": 5}],
    }
    assert post(api, scenario).status_code == 200
    for _ in range(5):
        api.call("get_session", "GET", "/replay/sessions/x")
    answer = requests.post(
        api.base_url + "/_mock/verify", json={"findings": "off"}, timeout=5
    ).json()
    [failure] = answer["failures"]
    assert "saw 2" in failure["message"] and "3 older ones fell off" in failure["message"]
    assert "journal_limit" in failure["message"]
    assert failure["seen"]["evicted"] == 3
    assert post(api, {"scenario": "back"}).status_code == 200


def test_validate_refuses_a_symlink_to_a_device_and_a_fifo_without_reading_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    started = time.perf_counter()
    assert main(["validate", str(zero), str(fifo)]) == 1
    assert time.perf_counter() - started < 10
    out = capsys.readouterr().out
    assert out.count("not a regular file") == 2 and "Traceback" not in out


def test_a_contracts_file_bigger_than_the_limit_is_read_no_further(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    with (folder / "session.yaml").open("wb") as sparse:
        sparse.truncate(3 * 1024**3)  # 3 GB that occupy no disk
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "scenario: s\nplans:\n  - {agent: a, environment: development, status: approved,"
        " contracts_dir: contracts}\n"
    )
    with pytest.raises(ScenarioError, match="larger than"):
        load_scenario(scenario)
    assert read_bounded(scenario)  # a regular small file reads whole


def test_the_hot_reload_watcher_survives_a_device_and_a_fifo_and_reloads_afterwards(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.yaml"
    path.write_text("scenario: first\n")
    service = MockService(Settings(scenario=str(path)))
    said: list[str] = []
    watcher = ScenarioWatcher(service, path, said.append, interval=0.05).start()
    try:
        path.unlink()
        path.symlink_to("/dev/zero")
        wait_for(lambda: any("not a regular file" in line for line in said))
        path.unlink()
        os.mkfifo(path)
        wait_for(lambda: sum("not a regular file" in line for line in said) >= 2)
        path.unlink()
        path.write_text("scenario: second\n")
        wait_for(lambda: service.scenario is not None and service.scenario.name == "second")
    finally:
        watcher.stop()
    assert watcher._thread is None or not watcher._thread.is_alive()


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
