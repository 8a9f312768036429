"""Hardening against what a scenario can script (issue 10, PROTOCOL.md §5, §8): raw answer
headers HTTP cannot carry, and delays stacked rule upon rule."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from vesanor_mock.server import MockServer

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
