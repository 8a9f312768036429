"""Concurrency and determinism: no lost update, one winner per version, byte-identical replays."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from vesanor_mock.config import Settings
from vesanor_mock.server import MockServer

from .apiclient import Api
from .contracts_examples import refund_contract

HEADERS = {"Authorization": "Bearer vsk_test_default"}


def worker_loop(base: str, sid: str, fence: int, rounds: int) -> int:
    """Run preflight/proposal/receipt loops; answer how many receipts committed."""
    http = requests.Session()
    http.headers.update(HEADERS)
    url = f"{base}/api/v1/replay/sessions/{sid}"
    committed = 0
    for _ in range(rounds):
        prep = http.post(url + "/preflight", json={"fence_token": fence}, timeout=10)
        if prep.status_code != 200:
            assert prep.status_code == 409, prep.text
            continue
        proposal = http.post(
            url + "/proposals",
            json={
                "prepared_request_id": prep.json()["prepared_request_id"],
                "fence_token": fence,
                "response": {"tool_calls": [{"id": "c", "name": "lookup_order", "arguments": {}}]},
            },
            timeout=10,
        )
        if proposal.status_code != 200:
            assert proposal.status_code == 409, proposal.text
            continue
        pending = proposal.json()["calls"][0]["pending_call_id"]
        receipt = http.post(
            url + "/receipts",
            json={"pending_call_id": pending, "fence_token": fence, "outcome": "success"},
            timeout=10,
        )
        assert receipt.status_code == 200, receipt.text
        committed += receipt.json()["committed"]
    return committed


def test_racing_threads_on_one_session_never_lose_an_update(api: Api) -> None:
    body = api.create_session(
        contract={"compiled_session": refund_contract(session_limits={})}
    ).json()
    sid, fence = body["session"]["session_id"], body["lease"]["fence_token"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        totals = list(pool.map(lambda _: worker_loop(api.base_url, sid, fence, 15), range(8)))
    session = api.get_session(sid).json()["session"]
    assert sum(totals) > 0
    assert session["state_version"] == sum(totals)
    assert session["counters"]["tool_calls"] == sum(totals)


def test_two_writers_holding_one_prepared_request_never_both_succeed(api: Api) -> None:
    body = api.create_session(
        contract={"compiled_session": refund_contract(session_limits={})}
    ).json()
    sid, fence = body["session"]["session_id"], body["lease"]["fence_token"]
    for _ in range(10):
        prep = api.preflight(sid, fence_token=fence).json()["prepared_request_id"]
        barrier = threading.Barrier(6)

        def propose(_: int, prep: str = prep, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return requests.post(
                f"{api.base_url}/api/v1/replay/sessions/{sid}/proposals",
                json={
                    "prepared_request_id": prep,
                    "fence_token": fence,
                    "response": {"tool_calls": []},
                },
                headers=HEADERS,
                timeout=10,
            ).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = sorted(pool.map(propose, range(6)))
        assert statuses == [200, 409, 409, 409, 409, 409]


def run_sequence(server: MockServer) -> list[bytes]:
    """A fixed request sequence; answer every raw body."""
    http = requests.Session()
    http.headers.update(HEADERS)
    base = server.url + "/api/v1"
    bodies: list[bytes] = []

    def post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = http.post(base + path, json=payload, timeout=10)
        bodies.append(response.content + response.headers["X-Request-Id"].encode())
        return dict(response.json())

    created = post(
        "/replay/sessions",
        {"agent": "refund-bot", "contract": {"compiled_session": refund_contract()}},
    )
    sid = created["session"]["session_id"]
    prep = post(f"/replay/sessions/{sid}/preflight", {"fence_token": 1})
    proposal = post(
        f"/replay/sessions/{sid}/proposals",
        {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": 1,
            "response": {"tool_calls": [{"id": "1", "name": "verify_customer", "arguments": {}}]},
        },
    )
    pending = proposal["calls"][0]["pending_call_id"]
    post(
        f"/replay/sessions/{sid}/receipts",
        {"pending_call_id": pending, "fence_token": 1, "outcome": "success"},
    )
    post(f"/replay/sessions/{sid}/labels", {"key": "k", "value": 1})
    post(f"/replay/sessions/{sid}/recover", {})
    post(f"/replay/sessions/{sid}/kill", {"reason": "done"})
    bodies.append(http.get(f"{base}/replay/sessions/{sid}?include=pending", timeout=10).content)
    return bodies


def test_two_fresh_servers_with_the_same_seed_answer_byte_identical_bodies() -> None:
    with MockServer(Settings(port=0, seed=7)) as one, MockServer(Settings(port=0, seed=7)) as two:
        assert run_sequence(one) == run_sequence(two)


def test_another_seed_gives_other_ids() -> None:
    with MockServer(Settings(port=0, seed=1)) as one, MockServer(Settings(port=0, seed=2)) as two:
        assert run_sequence(one) != run_sequence(two)
