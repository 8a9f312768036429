"""Many concurrent clients over HTTP on one session and one workflow: no lost update, and
exactly one winner per state version, per prepared request, per handoff and per resource.

Every answer goes through the validating client; threads start together behind a barrier.
Uvicorn serves every handler on one event loop, so over HTTP the runtime sees one request at
a time; the last test races threads on the Runtime in process, where its lock must hold.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests

from vesanor_mock.clock import Clock
from vesanor_mock.domain.runtime import Runtime
from vesanor_mock.domain.sessionops import Context
from vesanor_mock.ids import IdFactory

from .apiclient import Api, error_code
from .contracts_examples import refund_contract
from .test_api_cycle import call, start
from .test_api_workflows import child, offer, root

THREADS = 12
T = TypeVar("T")


def together(api: Api, count: int, work: Callable[[Api, int], T]) -> list[T]:
    """Run `work(client, i)` on `count` threads, each with its own client, started at once."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        client = api.with_key(api.key)
        barrier.wait()
        return work(client, i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def unlimited(api: Api) -> tuple[str, int]:
    """A refund-bot session without limits, so only the races decide."""
    return start(api, refund_contract(session_limits={}))


def governed_commit(api: Api, sid: str, fence: int) -> int | None:
    """Read the version, preflight on it, propose, receipt; the committed version or None."""
    version = api.get_session(sid).json()["session"]["state_version"]
    prep = api.preflight(sid, fence_token=fence, expected_state_version=version)
    if prep.status_code != 200:
        assert error_code(prep) in ("STALE_STATE_VERSION", "PENDING_CALLS_UNRESOLVED")
        return None
    proposal = api.propose(
        sid,
        prepared_request_id=prep.json()["prepared_request_id"],
        fence_token=fence,
        response={"tool_calls": [call("lookup_order")]},
    )
    if proposal.status_code != 200:
        assert error_code(proposal) == "STALE_STATE_VERSION", proposal.text
        return None
    pending = proposal.json()["calls"][0]["pending_call_id"]
    receipt = api.receipt(sid, pending_call_id=pending, fence_token=fence, outcome="success")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["committed"] is True
    return int(receipt.json()["state_version"])


def test_concurrent_governed_writers_each_commit_a_version_no_one_else_got(api: Api) -> None:
    sid, fence = unlimited(api)

    def writer(client: Api, _: int) -> list[int]:
        got = [governed_commit(client, sid, fence) for _ in range(6)]
        return [v for v in got if v is not None]

    committed = [v for versions in together(api, THREADS, writer) for v in versions]
    session = api.get_session(sid).json()["session"]
    assert committed, "no writer ever won"
    assert sorted(committed) == list(range(1, session["state_version"] + 1))
    assert session["counters"]["tool_calls"] == len(committed)


def test_many_proposals_on_one_prepared_request_have_exactly_one_winner(api: Api) -> None:
    sid, fence = unlimited(api)
    for _ in range(4):
        prepared = api.preflight(sid, fence_token=fence).json()["prepared_request_id"]

        def propose(client: Api, i: int, prepared: str = prepared) -> requests.Response:
            return client.propose(
                sid,
                prepared_request_id=prepared,
                fence_token=fence,
                response={"tool_calls": [call("lookup_order", call_id=f"c{i}")]},
            )

        answers = together(api, THREADS, propose)
        winners = [a for a in answers if a.status_code == 200]
        assert len(winners) == 1
        assert {error_code(a) for a in answers if a.status_code != 200} == {
            "PREPARED_REQUEST_CONSUMED"
        }
        pending = winners[0].json()["calls"][0]["pending_call_id"]
        api.receipt(sid, pending_call_id=pending, fence_token=fence, outcome="success")
    assert api.get_session(sid).json()["session"]["state_version"] == 4


def test_prepared_requests_of_one_version_commit_once_then_go_stale(api: Api) -> None:
    sid, fence = unlimited(api)
    prepared = together(
        api,
        THREADS,
        lambda client, _: client.preflight(sid, fence_token=fence, expected_state_version=0),
    )
    assert all(p.status_code == 200 and p.json()["state_version"] == 0 for p in prepared)

    def use(client: Api, i: int) -> requests.Response:
        return client.propose(
            sid,
            prepared_request_id=prepared[i].json()["prepared_request_id"],
            fence_token=fence,
            response={"tool_calls": [call("lookup_order")]},
        )

    first = use(api, 0).json()["calls"][0]["pending_call_id"]
    api.receipt(sid, pending_call_id=first, fence_token=fence, outcome="success")
    late = together(api, THREADS - 1, lambda client, i: use(client, i + 1))
    assert {(a.status_code, error_code(a)) for a in late} == {(409, "STALE_STATE_VERSION")}
    assert api.get_session(sid).json()["session"]["state_version"] == 1


def test_concurrent_tool_filter_writes_lose_nothing_and_a_recover_fences_the_rest_out(
    api: Api,
) -> None:
    sid, fence = unlimited(api)

    def write(client: Api, i: int) -> list[tuple[int, list[str]]]:
        done: list[tuple[int, list[str]]] = []
        for round_ in range(5):
            if i == 0 and round_ == 2:
                assert client.recover(sid, holder_id="new-owner").status_code == 200
                continue
            deny = [f"tool_{i}_{round_}"]
            answer = client.tool_filter(sid, deny=deny, fence_token=fence)
            if answer.status_code == 200:
                done.append((answer.json()["session"]["state_version"], deny))
            else:
                assert error_code(answer) == "FENCE_MISMATCH"
                assert answer.json()["error"]["details"]["current_fence_token"] == fence + 1
        return done

    wins = [w for writes in together(api, THREADS, write) for w in writes]
    session = api.get_session(sid).json()["session"]
    assert sorted(v for v, _ in wins) == list(range(1, session["state_version"] + 1))
    assert session["lease"]["fence_token"] == fence + 1
    last = max(wins)[1]
    assert session["tool_filter"] == {"allow": None, "deny": last}


def test_racing_completes_and_reclaims_of_one_handoff_have_exactly_one_winner(api: Api) -> None:
    sid, fence, wid = root(api)
    for _ in range(4):
        hid = offer(api, sid, fence, "researcher")["handoff_id"]

        def finish(client: Api, i: int, hid: str = hid) -> requests.Response:
            if i % 2:
                return client.reclaim_handoff(wid, hid, reason=f"worker {i}")
            return client.complete_handoff(wid, hid, result={"worker": i})

        answers = together(api, THREADS, finish)
        winners = [a for a in answers if a.status_code == 200]
        assert len(winners) == 1
        assert {error_code(a) for a in answers if a.status_code != 200} == {
            "HANDOFF_STATE_CONFLICT"
        }
        final = next(
            h
            for h in api.get_workflow(wid).json()["workflow"]["handoffs"]
            if h["handoff_id"] == hid
        )
        assert final == winners[0].json()["handoff"]


def test_racing_children_accept_one_handoff_exactly_once(api: Api) -> None:
    sid, fence, wid = root(api)
    hid = offer(api, sid, fence, "researcher")["handoff_id"]

    def accept(client: Api, _: int) -> requests.Response:
        field = {"type": "child", "workflow_id": wid, "role": "researcher", "handoff_id": hid}
        return client.create_session(agent="researcher", workflow=field)

    answers = together(api, THREADS, accept)
    created = [a for a in answers if a.status_code == 201]
    assert len(created) == 1
    assert {error_code(a) for a in answers if a.status_code != 201} == {"HANDOFF_STATE_CONFLICT"}
    workflow = api.get_workflow(wid).json()["workflow"]
    assert len(workflow["sessions"]) == 2
    handoff = workflow["handoffs"][0]
    assert handoff["status"] == "accepted"
    assert handoff["child_session_id"] == created[0].json()["session"]["session_id"]


def test_racing_offers_for_one_resource_have_exactly_one_claimant(api: Api) -> None:
    sid, fence, wid = root(api)
    answers = together(
        api,
        THREADS,
        lambda client, _: client.offer_handoff(
            sid, to_role="writer", fence_token=fence, resource_claims=["doc-1"]
        ),
    )
    assert sum(a.status_code == 201 for a in answers) == 1
    assert {error_code(a) for a in answers if a.status_code != 201} == {"RESOURCE_CONFLICT"}
    assert len(api.get_workflow(wid).json()["workflow"]["handoffs"]) == 1


def test_racing_kills_of_a_member_and_its_workflow_raise_its_version_once(api: Api) -> None:
    sid, _, wid = root(api)
    member, _ = child(api, wid, "researcher")

    def kill(client: Api, i: int) -> requests.Response:
        if i % 3 == 0:
            return client.kill_workflow(wid, reason=f"worker {i}")
        return client.kill(member, reason=f"worker {i}")

    answers = together(api, THREADS, kill)
    assert all(a.status_code == 200 for a in answers)
    for session_id in (sid, member):
        session = api.get_session(session_id).json()["session"]
        assert session["status"] == "killed"
        assert session["state_version"] == 1


def test_racing_creates_of_one_session_id_make_it_once_and_join_it_after(api: Api) -> None:
    answers = together(
        api,
        THREADS,
        lambda client, i: client.create_session(session_id="shared", holder_id=f"w{i}"),
    )
    assert sorted(a.status_code for a in answers) == [200] * (THREADS - 1) + [201]
    leases = {a.json()["lease"]["lease_id"] for a in answers}
    assert len(leases) == 1


def test_threads_calling_the_runtime_in_process_never_share_a_version() -> None:
    """Uvicorn runs every handler on one event loop; in-process callers rely on the lock."""
    runtime = Runtime(Context(Clock(), IdFactory(0)))
    _, created = runtime.create_session("default", {"agent": "refund-bot"})
    sid = created["session"]["session_id"]
    versions: list[int] = []

    def write(i: int) -> None:
        for r in range(150):
            body = {"deny": [f"tool_{i}_{r}"], "fence_token": 1}
            versions.append(
                runtime.set_tool_filter("default", sid, body)["session"]["state_version"]
            )

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert sorted(versions) == list(range(1, 8 * 150 + 1))
    assert runtime.get_session("default", sid)["session"]["state_version"] == 8 * 150
