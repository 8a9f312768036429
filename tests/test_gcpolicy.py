"""The server's GC policy: frozen survivors, and worlds that reference counting alone frees."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from vesanor_mock import gcpolicy
from vesanor_mock.config import Settings
from vesanor_mock.http.app import MockService
from vesanor_mock.scenarios import fixtures_dir

from .contracts_examples import refund_contract


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The cycle collector disabled: only reference counting frees objects."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def busy_service() -> MockService:
    """A service on the workflow fixture whose world has served a few governed cycles."""
    service = MockService(Settings(scenario=str(fixtures_dir() / "workflow-handoff-reclaim.yaml")))
    runtime = service.world.runtime
    for n in range(5):
        _, body = runtime.create_session(
            "default", {"agent": "refund-bot", "contract": {"compiled_session": refund_contract()}}
        )
        sid = body["session"]["session_id"]
        prep = runtime.preflight("default", sid, {"fence_token": 1})
        proposal = runtime.propose(
            "default",
            sid,
            {
                "prepared_request_id": prep["prepared_request_id"],
                "fence_token": 1,
                "response": {
                    "tool_calls": [{"id": "c", "name": "lookup_order", "arguments": {"n": n}}]
                },
            },
        )
        pending = proposal["calls"][0]["pending_call_id"]
        runtime.receipt(
            "default", sid, {"pending_call_id": pending, "fence_token": 1, "outcome": "success"}
        )
        runtime.kill("default", sid, {"reason": "done"})
    return service


def test_a_reset_frees_the_old_world_by_reference_counting_alone(collector_off: None) -> None:
    service = busy_service()
    old = weakref.ref(service.world)
    old_runtime = weakref.ref(service.world.runtime)
    service.reset()
    assert old() is None
    assert old_runtime() is None


def test_the_policy_freezes_the_survivors_of_older_generation_collections() -> None:
    try:
        gcpolicy.install()
        survivors = [[n] for n in range(1000)]
        gc.collect(1)
        assert gc.get_freeze_count() >= len(survivors)
    finally:
        gcpolicy.uninstall()
    assert gc.get_freeze_count() == 0
