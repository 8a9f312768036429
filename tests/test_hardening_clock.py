"""Hardening of time (issue 10, PROTOCOL.md §8): no TTL, clock start or clock advance can take
the virtual clock outside 1970..9999, so no date overflow can answer 500 or brick the server."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from vesanor_mock.cli import main
from vesanor_mock.clock import MAX_INSTANT, Clock, ClockRangeError, parse_timestamp
from vesanor_mock.server import MockServer

from .apiclient import Api, error_code
from .test_api_workflows import root

TEN_YEARS = 315_360_000


def post_scenario(api: Api, text: str) -> requests.Response:
    return requests.post(
        api.base_url + "/_mock/scenario",
        data=text,
        headers={"Content-Type": "application/yaml"},
        timeout=10,
    )


def test_a_handoff_ttl_past_the_end_of_time_is_422_and_offers_nothing(api: Api) -> None:
    sid, fence, wid = root(api)
    response = api.offer_handoff(sid, to_role="researcher", fence_token=fence, ttl_s=1e12)
    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/ttl_s"
    workflow = api.get_workflow(wid).json()["workflow"]
    assert workflow["handoffs"] == []
    ok = api.offer_handoff(sid, to_role="researcher", fence_token=fence, ttl_s=300)
    assert ok.status_code == 201


@pytest.mark.parametrize(
    ("text", "pointer", "line"),
    [
        ("scenario: t\noptions:\n  prepared_ttl_s: 1.0e12\n", "/options/prepared_ttl_s", 3),
        ("scenario: t\noptions:\n  lease_ttl_s: 1.0e12\n", "/options/lease_ttl_s", 3),
        ("scenario: t\nclock:\n  start: '9999-12-31T23:59:00Z'\n", "/clock/start", 3),
        ("scenario: t\nclock:\n  start: '0001-01-01T00:00:00+01:00'\n", "/clock/start", 3),
        ("scenario: t\nclock:\n  start: '1969-12-31T23:59:59Z'\n", "/clock/start", 3),
        (
            "scenario: t\nrules:\n  - when: {endpoint: any}\n    then: {advance_clock_s: 1.0e12}\n",
            "/rules/0/then/advance_clock_s",
            4,
        ),
    ],
)
def test_a_scenario_that_would_take_the_clock_out_of_range_does_not_load(
    api: Api, text: str, pointer: str, line: int
) -> None:
    before = requests.get(api.base_url + "/_mock/state", timeout=5).json()
    response = post_scenario(api, text)
    assert response.status_code == 422, response.text
    [issue] = response.json()["error"]["details"]["issues"]
    assert issue["path"] == pointer
    assert issue["line"] == line
    assert requests.get(api.base_url + "/_mock/state", timeout=5).json() == before


def test_validate_reports_an_out_of_range_start_with_its_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("scenario: t\nclock:\n  start: '0001-01-01T00:00:00+01:00'\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert f"{path}:3:" in out.out and "outside the clock's range" in out.out
    assert "Traceback" not in out.out + out.err


def test_clock_advances_stop_at_the_end_of_time_and_the_server_keeps_answering(
    api: Api, server: MockServer
) -> None:
    assert api.create_session(session_id="before-the-end").status_code == 201
    clock = server.service.world.clock
    while True:  # what 797 POST /_mock/clock/advance {"seconds": 315360000} did
        try:
            clock.advance(TEN_YEARS)
        except ClockRangeError:
            break
    response = requests.post(
        api.base_url + "/_mock/clock/advance", json={"seconds": TEN_YEARS}, timeout=5
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/seconds"
    now = parse_timestamp(clock.now_iso())
    assert now <= MAX_INSTANT
    created = api.create_session(session_id="at-the-end")
    assert created.status_code == 201
    assert api.get_session("before-the-end").status_code == 200
    assert requests.get(api.base_url + "/_mock/state", timeout=5).status_code == 200
    assert server.service.server_errors == []


def test_a_ttl_that_would_pass_the_end_is_held_at_the_last_instant(
    api: Api, server: MockServer
) -> None:
    assert post_scenario(api, "scenario: t\noptions: {lease_ttl_s: 3600}\n").status_code == 200
    clock = server.service.world.clock
    left = (MAX_INSTANT - parse_timestamp(clock.now_iso())).total_seconds()
    clock.advance(left - 10)
    body = api.create_session(session_id="late").json()
    assert body["lease"]["expires_at"] == "9999-12-31T23:59:59.999Z"
    assert post_scenario(api, "scenario: back\n").status_code == 200


def test_a_rule_advance_at_the_end_of_time_is_refused_and_moves_nothing(
    api: Api, server: MockServer
) -> None:
    text = "scenario: t\nrules:\n  - id: tick\n    when: {endpoint: get_session}\n"
    text += f"    then: {{advance_clock_s: {TEN_YEARS}}}\n"
    assert post_scenario(api, text).status_code == 200
    clock = server.service.world.clock
    left = (MAX_INSTANT - parse_timestamp(clock.now_iso())).total_seconds()
    clock.advance(left - 5)
    before = clock.now_iso()
    response = api.get_session("nobody")
    assert response.status_code == 422
    assert error_code(response) == "MOCK_LIMIT_EXCEEDED"
    assert response.json()["error"]["details"]["limit"] == "clock"
    assert clock.now_iso() == before
    assert server.service.server_errors == []
    assert post_scenario(api, "scenario: back\n").status_code == 200


def test_a_real_clock_near_the_end_never_passes_it() -> None:
    ticks = iter([0.0, 1e12])
    clock = Clock("9999-12-31T23:59:00Z", mode="real", monotonic=lambda: next(ticks))
    assert clock.now() == MAX_INSTANT
