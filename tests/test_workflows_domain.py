"""Unit tests of the workflow domain: compiling a compiled_workflow, admission, reclaimability."""

from __future__ import annotations

from typing import Any

import pytest

from vesanor_mock.clock import Clock
from vesanor_mock.domain.handoffs import reclaimable
from vesanor_mock.domain.models import Handoff
from vesanor_mock.domain.runtime import Runtime
from vesanor_mock.domain.sessionops import Context
from vesanor_mock.domain.workflows import compile_workflow
from vesanor_mock.errors import ApiError, CompileError
from vesanor_mock.ids import IdFactory

from .test_api_workflows import compiled_workflow


def runtime() -> Runtime:
    """A fresh runtime on a frozen clock with seed 0."""
    return Runtime(Context(Clock(), IdFactory(0)))


def compile_errors(raw: Any) -> list[tuple[str, str]]:
    """(path, keyword) of every compile error of a compiled_workflow."""
    with pytest.raises(CompileError) as caught:
        compile_workflow(raw)
    return [(e.path, e.keyword) for e in caught.value.errors]


def test_a_compiled_workflow_compiles_to_roles_routes_limits_and_role_contracts() -> None:
    spec = compile_workflow(compiled_workflow(max_cost_usd=2, max_sessions=5))
    assert spec.name == "report"
    assert list(spec.roles) == ["orchestrator", "researcher", "writer"]
    assert spec.roles["researcher"].compiled.initial_phase == "working"
    assert ("researcher", "writer") in spec.allowed_handoffs
    assert (spec.max_cost_usd, spec.max_sessions) == (2.0, 5)


def test_a_role_whose_session_contract_is_null_has_no_contract_but_shows_it_as_given() -> None:
    raw = compiled_workflow()
    raw["roles"][0]["session_contract"] = None
    role = compile_workflow(raw).roles["orchestrator"]
    assert role.compiled is None
    assert role.to_dict() == {"name": "orchestrator", "session_contract": None}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schema_version": "2"}, [("/schema_version", "const")]),
        ({"workflow": ""}, [("/workflow", "type")]),
        ({"roles": []}, [("/roles", "minItems"), ("/handoffs/0/from", "enum")]),
        ({"handoffs": {"from": "a"}}, [("/handoffs", "type")]),
        ({"limits": {"max_cost_usd": -1}}, [("/limits/max_cost_usd", "minimum")]),
        ({"limits": {"max_sessions": 0}}, [("/limits/max_sessions", "minimum")]),
        ({"limits": {"max_sessions": True}}, [("/limits/max_sessions", "minimum")]),
        ({"limits": []}, [("/limits", "type")]),
    ],
)
def test_a_broken_compiled_workflow_names_every_problem_by_pointer(
    change: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    raw = {**compiled_workflow(), **change}
    assert compile_errors(raw)[: len(expected)] == expected


def test_a_compiled_workflow_that_is_not_an_object_is_a_compile_error() -> None:
    assert compile_errors(["roles"]) == [("", "type")]


def test_a_refused_workflow_session_draws_no_ids_and_leaves_no_state() -> None:
    refused, fresh = runtime(), runtime()
    body = {"agent": "a", "workflow": {"type": "root", "role": "orchestrator"}}
    body["workflow"]["compiled_workflow"] = compiled_workflow()
    _, created = refused.create_session("t", body)
    wid = created["session"]["workflow"]["workflow_id"]
    refusals = (
        {"type": "child", "workflow_id": wid, "role": "editor"},
        {"type": "child", "workflow_id": wid, "role": "writer", "handoff_id": "hof_none"},
        {**body["workflow"], "workflow_id": wid},
        {**body["workflow"], "role": "editor"},
    )
    for bad in refusals:
        with pytest.raises(ApiError):
            refused.create_session("t", {"agent": "b", "workflow": bad})
    fresh.create_session("t", body)
    assert len(refused.sessions) == len(fresh.sessions) == 1
    assert refused.ctx.ids.new("x") == fresh.ctx.ids.new("x")


def handoff(status: str, expires_at: str | None = None) -> Handoff:
    """A handoff in a given state, made at the clock's start."""
    start = "2026-01-01T00:00:00.000Z"
    return Handoff("hof_1", "wf", "s", "a", "b", {}, [], start, expires_at, start, status)


def test_reclaimability_follows_offered_or_dead_child_or_expiry() -> None:
    rt = runtime()
    ctx = rt.ctx
    _, made = rt.create_session("t", {"agent": "kid"})
    kid = rt.session("t", made["session"]["session_id"])
    assert reclaimable(ctx, handoff("offered"), None)
    assert not reclaimable(ctx, handoff("accepted"), kid)
    assert reclaimable(ctx, handoff("accepted", "2026-01-01T00:00:00.000Z"), kid)
    assert not reclaimable(ctx, handoff("accepted", "2026-01-01T00:00:00.001Z"), kid)
    kid.status = "killed"
    assert reclaimable(ctx, handoff("accepted"), kid)
