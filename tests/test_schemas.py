"""The JSON Schemas of the wire contract, the registry that runs them, and the OpenAPI document."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from vesanor_mock.errors import FieldError, ValidationFailed
from vesanor_mock.openapi import CONTROL_OPERATIONS, OPERATIONS, build_openapi
from vesanor_mock.schemas import (
    ENDPOINTS,
    MAX_ERRORS,
    SchemaRegistry,
    pointer,
    schemas_dir,
)

HASH = "sha256:" + "0" * 64
TS = "2026-01-01T00:00:00.000Z"
REQUEST_ENDPOINTS = (
    "create_session",
    "preflight",
    "proposals",
    "receipts",
    "labels",
    "tool_filter",
    "report_bypass",
    "kill",
    "recover",
    "offer_handoff",
    "complete_handoff",
    "reclaim_handoff",
    "kill_workflow",
)
COMPILED_WORKFLOW = {
    "schema_version": "1.0",
    "workflow": "refunds",
    "roles": [{"name": "triage", "session_contract": {"agent": "t"}}, {"name": "payer"}],
    "handoffs": [{"from": "triage", "to": "payer"}],
    "limits": {"max_cost_usd": 5, "max_sessions": 3},
}

VALID: dict[str, list[dict[str, Any]]] = {
    "create_session": [
        {"agent": "refund-bot"},
        {
            "session_id": "s-1",
            "agent": "refund-bot",
            "environment": "staging",
            "mode": "shadow",
            "enforcement": "advisory",
            "holder_id": "worker-a",
            "contract": {"compiled_hash": HASH},
            "metadata": {"anything": [1, {"deep": None}]},
        },
        {"agent": "a", "contract": {"compiled_session": {"schema_version": "1.0", "x": 1}}},
        {
            "agent": "a",
            "workflow": {
                "type": "root",
                "role": "triage",
                "compiled_workflow": {**COMPILED_WORKFLOW},
            },
        },
        {
            "agent": "a",
            "workflow": {
                "type": "child",
                "workflow_id": "wf_1",
                "role": "payer",
                "parent_session_id": "s-1",
                "handoff_id": "hof_1",
            },
        },
    ],
    "preflight": [
        {"fence_token": 1},
        {
            "fence_token": 3,
            "expected_state_version": 0,
            "request": {
                "model": "gpt",
                "provider": "openai",
                "tools": ["a"],
                "messages_digest": "d",
            },
            "idempotency_key": "k",
        },
    ],
    "proposals": [
        {"prepared_request_id": "prep_1", "fence_token": 1, "response": {"tool_calls": []}},
        {
            "prepared_request_id": "prep_1",
            "fence_token": 1,
            "response": {
                "tool_calls": [{"id": "c1", "name": "refund", "arguments": {"amount": 5}}],
                "text": "ok",
            },
            "usage": {"cost_usd": 0.25, "input_tokens": 10, "output_tokens": 2},
            "checkpoint_decisions": [
                {"tool_call_id": "c1", "approved": True, "approver": "ann", "reason": "fine"}
            ],
        },
    ],
    "receipts": [
        {"pending_call_id": "pc_1", "fence_token": 1, "outcome": "success"},
        {
            "pending_call_id": "pc_1",
            "fence_token": 1,
            "outcome": "error",
            "output": [1, "two", {"three": 3}],
            "error": {"message": "boom", "type": "Timeout"},
            "evidence": {
                "kind": "ack",
                "acknowledged": True,
                "executed_at": TS,
                "duration_ms": 12.5,
            },
        },
    ],
    "labels": [
        {"key": "k"},
        {"key": "k", "value": 1.5, "metadata": {"a": {"b": []}}},
        {"key": "k", "value": None},
        {"key": "k", "value": False},
    ],
    "tool_filter": [{}, {"allow": None, "deny": ["x"], "fence_token": 2}, {"allow": ["a"]}],
    "report_bypass": [
        {},
        {"detected_at": TS, "provider": "openai", "call_site": "app.py:3", "details": {"x": 1}},
    ],
    "kill": [{}, {"reason": "enough", "actor": "ops"}],
    "recover": [{}, {"holder_id": "worker-b", "reason": "crash"}],
    "offer_handoff": [
        {"to_role": "payer", "fence_token": 1},
        {
            "to_role": "payer",
            "fence_token": 1,
            "payload": {"order": {"id": 7}},
            "resource_claims": ["order:7"],
            "ttl_s": 0.5,
        },
    ],
    "complete_handoff": [{}, {"outcome": "failed", "result": {"why": ["x"]}}],
    "reclaim_handoff": [{}, {"reason": "stuck"}],
    "kill_workflow": [{}, {"reason": "stop"}],
}
"""Valid request bodies, a minimal and a full one per endpoint (at least)."""

ODD_VALUES: tuple[Any, ...] = (None, True, 0, -1, 1.0, 1.5, "", "x" * 300, [], {}, [1], {"a": 1})


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    """One registry for the whole module."""
    return SchemaRegistry.load()


def reject(
    registry: SchemaRegistry, endpoint: str, body: Any, mode: str = "strict"
) -> list[FieldError]:
    """The errors of a body that must be refused."""
    with pytest.raises(ValidationFailed) as caught:
        registry.validate_request(endpoint, body, mode)
    return caught.value.errors


# -- the schema files --------------------------------------------------------------------------


def schema_files() -> list[str]:
    """Every schema file, relative to the schemas folder."""
    return sorted(p.relative_to(schemas_dir()).as_posix() for p in schemas_dir().rglob("*.json"))


@pytest.mark.parametrize("relative", schema_files())
def test_every_schema_file_is_valid_json_and_a_valid_draft_2020_12_schema(relative: str) -> None:
    schema = json.loads((schemas_dir() / relative).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://vesanor-mock.dev/schemas/" + relative


def test_the_registry_loads_and_checks_every_request_and_response_schema() -> None:
    registry = SchemaRegistry.load(check=True)
    names = set(registry.names())
    assert {f"requests/{e}" for e in REQUEST_ENDPOINTS} <= names
    assert {f"responses/{e}" for e in ENDPOINTS} | {"responses/error", "common"} <= names
    assert registry.schema("requests/preflight")["required"] == ["fence_token"]


def test_schemas_dir_finds_the_repository_schemas_folder() -> None:
    assert (schemas_dir() / "common.schema.json").is_file()


def test_request_schemas_use_no_any_of_or_one_of_so_lenient_mode_stays_exact(
    registry: SchemaRegistry,
) -> None:
    for endpoint in REQUEST_ENDPOINTS:
        text = json.dumps(registry.bundle("requests/" + endpoint))
        assert '"anyOf"' not in text and '"oneOf"' not in text, endpoint


def test_every_array_and_string_of_a_request_schema_has_a_size_limit(
    registry: SchemaRegistry,
) -> None:
    def unbounded(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            kinds = node.get("type")
            kinds = [kinds] if isinstance(kinds, str) else kinds or []
            if "array" in kinds and "maxItems" not in node:
                yield node
            if (
                "string" in kinds
                and "maxLength" not in node
                and not {"enum", "pattern"} & set(node)
            ):
                yield node
            for value in node.values():
                yield from unbounded(value)
        elif isinstance(node, list):
            for value in node:
                yield from unbounded(value)

    for endpoint in REQUEST_ENDPOINTS:
        assert list(unbounded(registry.bundle("requests/" + endpoint))) == [], endpoint


# -- strict, lenient, off -------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", REQUEST_ENDPOINTS)
def test_every_valid_example_passes_in_every_mode(registry: SchemaRegistry, endpoint: str) -> None:
    for body in VALID[endpoint]:
        for mode in ("strict", "lenient", "off"):
            registry.validate_request(endpoint, copy.deepcopy(body), mode)


def test_an_unknown_field_at_depth_is_rejected_in_strict_mode_with_its_pointer(
    registry: SchemaRegistry,
) -> None:
    body = copy.deepcopy(VALID["proposals"][1])
    body["response"]["tool_calls"][0]["colour"] = "red"
    errors = reject(registry, "proposals", body)
    assert errors == [
        FieldError(
            "/response/tool_calls/0/colour",
            "unknown property 'colour' is not allowed",
            "additionalProperties",
        )
    ]


def test_each_unknown_field_gets_its_own_error(registry: SchemaRegistry) -> None:
    errors = reject(registry, "kill", {"a": 1, "b": 2})
    assert [(e.path, e.keyword) for e in errors] == [
        ("/a", "additionalProperties"),
        ("/b", "additionalProperties"),
    ]


def test_lenient_mode_ignores_unknown_fields_at_every_depth(registry: SchemaRegistry) -> None:
    body = copy.deepcopy(VALID["receipts"][1])
    body["future_field"] = 1
    body["evidence"]["signature"] = "abc"
    body["error"]["code"] = 7
    registry.validate_request("receipts", body, "lenient")


def test_lenient_mode_still_rejects_a_wrong_type_next_to_an_unknown_field(
    registry: SchemaRegistry,
) -> None:
    body = {"fence_token": "one", "future_field": 1}
    errors = reject(registry, "preflight", body, "lenient")
    assert [(e.path, e.keyword) for e in errors] == [("/fence_token", "type")]


def test_lenient_mode_does_not_count_unknown_fields_towards_exactly_one_contract(
    registry: SchemaRegistry,
) -> None:
    body = {"agent": "a", "contract": {"compiled_hash": HASH, "note": "x"}}
    registry.validate_request("create_session", body, "lenient")
    both = {"agent": "a", "contract": {"compiled_hash": HASH, "compiled_session": {}}}
    assert reject(registry, "create_session", both, "lenient")[0].keyword == "maxProperties"


def test_off_mode_ignores_unknown_fields_and_values_but_keeps_the_shape(
    registry: SchemaRegistry,
) -> None:
    body = {
        "prepared_request_id": "",
        "fence_token": -3,
        "response": {"tool_calls": [], "mood": "odd"},
        "nonsense": True,
    }
    registry.validate_request("proposals", body, "off")
    with pytest.raises(ValidationFailed) as missing:
        registry.validate_request("proposals", {"nonsense": True}, "off")
    assert {e.keyword for e in missing.value.errors} == {"required"}
    with pytest.raises(ValidationFailed) as wrong_type:
        registry.validate_request("proposals", {**body, "fence_token": "one"}, "off")
    assert [e.path for e in wrong_type.value.errors] == ["/fence_token"]
    with pytest.raises(ValidationFailed):
        registry.validate_request("proposals", ["not", "an", "object"], "off")


def test_endpoints_without_a_request_body_are_not_validated(registry: SchemaRegistry) -> None:
    for endpoint in ("get_session", "get_workflow", "governance_plan"):
        registry.validate_request(endpoint, {"anything": 1}, "strict")


def test_an_unknown_endpoint_or_mode_is_a_programming_error(registry: SchemaRegistry) -> None:
    with pytest.raises(KeyError):
        registry.validate_request("teleport", {}, "strict")
    with pytest.raises(ValueError, match="mode"):
        registry.validate_request("kill", {}, "relaxed")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", {"any": {"thing": [1, None, {"x": "y"}]}}),
        ("contract", {"compiled_session": {"tools": {"t": {"whatever": {"deep": 1}}}}}),
        ("workflow", {"type": "root", "role": "triage",
                      "compiled_workflow": {**COMPILED_WORKFLOW, "owner": {"x": 1},
                                            "roles": [{"name": "triage", "extra": 1}],
                                            "limits": {"max_sessions": 2, "custom": True}}}),
    ],
)  # fmt: skip
def test_free_form_fields_of_create_session_accept_anything(
    registry: SchemaRegistry, field: str, value: Any
) -> None:
    registry.validate_request("create_session", {"agent": "a", field: value}, "strict")


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("proposals", {"prepared_request_id": "p", "fence_token": 1, "response": {
            "tool_calls": [{"id": "c", "name": "n", "arguments": {"a": {"b": [{}]}, "c": None}}]}}),
        ("receipts", {"pending_call_id": "pc", "fence_token": 1, "outcome": "success",
                      "output": {"a": [1, {"b": None}]}}),
        ("receipts", {"pending_call_id": "pc", "fence_token": 1, "outcome": "success",
                      "output": "just a string"}),
        ("labels", {"key": "k", "metadata": {"nested": {"deep": [1, 2]}}}),
        ("report_bypass", {"details": {"stack": ["a", "b"], "n": 1}}),
        ("offer_handoff", {"to_role": "r", "fence_token": 1, "payload": {"x": {"y": 1}}}),
        ("complete_handoff", {"result": {"x": [1, {"y": 2}]}}),
    ],
)  # fmt: skip
def test_free_form_fields_accept_any_content(
    registry: SchemaRegistry, endpoint: str, body: dict[str, Any]
) -> None:
    registry.validate_request(endpoint, body, "strict")


# -- error reports -------------------------------------------------------------------------


def test_a_missing_required_field_points_at_the_missing_property(registry: SchemaRegistry) -> None:
    errors = reject(registry, "create_session", {})
    assert errors == [FieldError("/agent", "'agent' is a required property", "required")]


def test_a_missing_field_at_depth_points_at_its_full_path(registry: SchemaRegistry) -> None:
    body = {"prepared_request_id": "p", "fence_token": 1, "response": {"tool_calls": [{"id": "c"}]}}
    errors = reject(registry, "proposals", body)
    assert [(e.path, e.keyword) for e in errors] == [
        ("/response/tool_calls/0/name", "required"),
        ("/response/tool_calls/0/arguments", "required"),
    ]


def test_json_pointers_escape_tilde_and_slash() -> None:
    assert pointer([]) == ""
    assert pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"


def test_an_unknown_field_with_a_slash_and_a_tilde_is_escaped_in_its_pointer(
    registry: SchemaRegistry,
) -> None:
    errors = reject(registry, "labels", {"key": "k", "metadata": {}, "a/b~c": 1})
    assert errors[0].path == "/a~1b~0c"
    assert "'a/b~c'" in errors[0].message


@pytest.mark.parametrize("body", [[], "text", 3, None, True])
def test_a_body_that_is_not_an_object_is_one_type_error_at_the_root(
    registry: SchemaRegistry, body: Any
) -> None:
    errors = reject(registry, "kill", body)
    assert len(errors) == 1
    assert (errors[0].path, errors[0].keyword) == ("", "type")
    assert errors[0].message.startswith("expected object, got ")


@pytest.mark.parametrize(
    ("endpoint", "body", "path", "keyword", "message"),
    [
        ("preflight", {"fence_token": "1"}, "/fence_token", "type", "expected integer, got string"),
        ("preflight", {"fence_token": 0}, "/fence_token", "minimum",
         "expected a number >= 1, got 0"),
        ("receipts", {"pending_call_id": "p", "fence_token": 1, "outcome": "ok"}, "/outcome",
         "enum", 'expected one of "success", "error", "timeout"'),
        ("labels", {"key": ""}, "/key", "minLength", "expected at least 1 character, got 0"),
        ("labels", {"key": "k" * 129}, "/key", "maxLength",
         "expected at most 128 characters, got 129"),
        ("offer_handoff", {"to_role": "r", "fence_token": 1, "ttl_s": 0}, "/ttl_s",
         "exclusiveMinimum", "expected a number > 0, got 0"),
        ("create_session", {"agent": "a", "session_id": "../etc"}, "/session_id", "pattern",
         "expected a string matching ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
        ("create_session", {"agent": "a", "contract": {}}, "/contract", "minProperties",
         "expected exactly one of 'compiled_session', 'compiled_hash'"),
        ("tool_filter", {"deny": ["x"] * 1001}, "/deny", "maxItems",
         "expected at most 1000 items, got 1001"),
    ],
)  # fmt: skip
def test_errors_say_what_was_expected(
    registry: SchemaRegistry, endpoint: str, body: Any, path: str, keyword: str, message: str
) -> None:
    errors = reject(registry, endpoint, body)
    assert errors[0] == FieldError(path, message, keyword)


def test_the_most_relevant_error_comes_first_and_errors_are_capped(
    registry: SchemaRegistry,
) -> None:
    body: dict[str, Any] = {f"unknown_{i:02d}": i for i in range(40)}
    body["request"] = {"tools": [1]}
    errors = reject(registry, "preflight", body)
    assert len(errors) == MAX_ERRORS
    assert errors[0] == FieldError(
        "/fence_token", "'fence_token' is a required property", "required"
    )


def test_a_root_workflow_needs_a_compiled_workflow_and_a_child_a_workflow_id(
    registry: SchemaRegistry,
) -> None:
    root = reject(
        registry, "create_session", {"agent": "a", "workflow": {"type": "root", "role": "r"}}
    )
    assert root[0].path == "/workflow/compiled_workflow"
    child = reject(
        registry, "create_session", {"agent": "a", "workflow": {"type": "child", "role": "r"}}
    )
    assert child[0].path == "/workflow/workflow_id"


def test_the_validation_failure_carries_the_errors_in_its_details(registry: SchemaRegistry) -> None:
    with pytest.raises(ValidationFailed) as caught:
        registry.validate_request("create_session", {}, "strict")
    assert caught.value.code == "VALIDATION_FAILED"
    assert caught.value.details["errors"] == [
        {"path": "/agent", "message": "'agent' is a required property", "keyword": "required"}
    ]


# -- the fast path --------------------------------------------------------------------------


def test_every_request_schema_compiles_to_a_fast_validator(registry: SchemaRegistry) -> None:
    # Private look: the fast path must exist for every request, or start-up silently slowed.
    assert all(registry._fast["requests/" + e] is not None for e in REQUEST_ENDPOINTS)


def test_a_valid_body_never_runs_the_slow_validator(
    registry: SchemaRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Boom:
        def iter_errors(self, _: Any) -> None:
            raise AssertionError("jsonschema ran on a valid body")

    for endpoint in REQUEST_ENDPOINTS:
        monkeypatch.setitem(registry._validators, "requests/" + endpoint, Boom())
        for body in VALID[endpoint]:
            registry.validate_request(endpoint, body, "strict")


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location inside a JSON value, the root included."""
    yield prefix
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in children:
        yield from paths_of(value, (*prefix, key))


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `body` with the value at `path` replaced."""
    if not path:
        return value
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def mutations(body: dict[str, Any]) -> Iterator[Any]:
    """Near-misses of a valid body: odd values anywhere, unknown members, missing members."""
    for path in paths_of(body):
        for value in ODD_VALUES:
            yield replaced(body, path, value)
        node: Any = body
        for key in path:
            node = node[key]
        if isinstance(node, dict):
            yield replaced(body, path, {**node, "zz_unknown": 1})
            for key in node:
                yield replaced(body, path, {k: v for k, v in node.items() if k != key})


def agree(registry: SchemaRegistry, endpoint: str, body: Any) -> None:
    """The fast validator and jsonschema give the same verdict on `body`."""
    name = "requests/" + endpoint
    fast = registry._fast_ok(name, body)
    slow = registry.validate(name, body) == []
    assert fast == slow, (endpoint, body)


@pytest.mark.parametrize("endpoint", REQUEST_ENDPOINTS)
def test_the_fast_and_slow_paths_agree_on_valid_bodies_and_near_misses(
    registry: SchemaRegistry, endpoint: str
) -> None:
    for body in VALID[endpoint]:
        assert registry._fast_ok("requests/" + endpoint, body)
        for variant in mutations(body):
            agree(registry, endpoint, variant)


KEYS = st.sampled_from(
    ["agent", "type", "role", "workflow_id", "compiled_workflow", "fence_token", "key", "value",
     "response", "tool_calls", "id", "name", "arguments", "contract", "compiled_hash", "zz"]
)  # fmt: skip
LEAVES = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2)
JSON_VALUES = st.recursive(
    LEAVES | st.sampled_from(["", "a", HASH, "root", "child"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(endpoint=st.sampled_from(REQUEST_ENDPOINTS), body=JSON_VALUES)
def test_the_fast_and_slow_paths_agree_on_arbitrary_json(
    registry: SchemaRegistry, endpoint: str, body: Any
) -> None:
    agree(registry, endpoint, body)


# -- responses ------------------------------------------------------------------------------


def a_session(**changes: Any) -> dict[str, Any]:
    """A valid Session object."""
    session = {
        "session_id": "sess_0123456789abcdef",
        "agent": "refund-bot",
        "environment": "production",
        "mode": "enforce",
        "enforcement": "protective",
        "status": "active",
        "authority_state": "authoritative",
        "bypass_detected": False,
        "state_version": 0,
        "phase": {"current": "start", "legal_next": ["verified"]},
        "counters": {
            "steps": 0,
            "tool_calls": 0,
            "calls_per_tool": {},
            "consecutive_blocks": 0,
            "consecutive_errors": 0,
            "cost_usd": 0.0,
        },
        "tool_filter": None,
        "labels": [
            {
                "label_id": "lbl_1",
                "sequence": 1,
                "key": "bypass:1",
                "value": {"provider": "openai"},
                "metadata": {},
                "system": True,
                "created_at": TS,
            }
        ],
        "bindings": {},
        "lease": {"lease_id": "lease_1", "fence_token": 1, "holder_id": "w", "expires_at": None},
        "workflow": None,
        "governance": {
            "attachment": "attached",
            "compiled_hash": HASH,
            "source": "plan",
            "unenforced": [],
        },
        "killed": None,
        "created_at": TS,
        "updated_at": TS,
    }
    session.update(changes)
    return session


def test_a_valid_session_response_has_no_errors(registry: SchemaRegistry) -> None:
    body = {"session": a_session(), "lease": a_session()["lease"]}
    assert registry.response_errors("create_session", 201, body) == []
    pending = {
        "pending_call_id": "pc_1",
        "proposal_id": "prop_1",
        "tool_call_id": "c1",
        "tool_name": "refund",
        "arguments": {"amount": 5},
        "commit_requirement": "acknowledged",
        "evidence_class": "local_transaction",
        "status": "pending",
        "created_at": TS,
        "receipt_id": None,
    }
    assert (
        registry.response_errors(
            "get_session", 200, {"session": a_session(pending_calls=[pending])}
        )
        == []
    )


def test_a_drifted_response_is_reported_with_its_pointer(registry: SchemaRegistry) -> None:
    body = {"session": a_session(extra=1, state_version="3")}
    errors = registry.response_errors("kill", 200, body)
    assert (
        "/session/extra: unknown property 'extra' is not allowed [additionalProperties]" in errors
    )
    assert "/session/state_version: expected integer, got string [type]" in errors


def test_a_nullable_object_in_a_response_is_explained_by_its_best_match(
    registry: SchemaRegistry,
) -> None:
    body = {"session": a_session(killed={"at": TS, "reason": None})}
    errors = registry.response_errors("get_session", 200, body)
    assert errors == ["/session/killed/actor: 'actor' is a required property [required]"]


def test_a_non_2xx_answer_is_checked_against_the_error_envelope(registry: SchemaRegistry) -> None:
    good = {
        "error": {
            "code": "SESSION_NOT_FOUND",
            "message": "m",
            "details": {},
            "request_id": "req_000001",
        }
    }
    assert registry.response_errors("get_session", 404, good) == []
    bad = {"error": {"code": "not-upper", "message": "m", "details": {}, "request_id": "x"}}
    assert len(registry.response_errors("get_session", 404, bad)) == 2


# -- OpenAPI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(registry: SchemaRegistry) -> dict[str, Any]:
    """The OpenAPI document built from the schemas."""
    return build_openapi(registry)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the document."""
    for path, item in document["paths"].items():
        for method, op in item.items():
            yield path, method, op


def by_endpoint(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The document's operations, by the endpoint name of the journal and the rules."""
    endpoint_of = {op.op_id: op.endpoint for op in OPERATIONS}
    return {
        endpoint_of[op["operationId"]]: op
        for path, _, op in operations(document)
        if path.startswith("/api/v1/")
    }


def test_the_openapi_document_is_3_1_with_bearer_auth_everywhere(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert {"title", "version"} <= set(document["info"])


def test_the_openapi_document_has_every_operation_and_the_control_api_under_its_own_tag(
    document: dict[str, Any],
) -> None:
    assert sorted(by_endpoint(document)) == sorted(ENDPOINTS)
    control = {
        (method, path): op
        for path, method, op in operations(document)
        if not path.startswith("/api/v1/")
    }
    assert set(control) == {(op.method, "/_mock" + op.path) for op in CONTROL_OPERATIONS}
    assert {("post", "/_mock/reset"), ("get", "/_mock/journal")} <= set(control)
    open_routes = {("get", "/_mock/ui"), ("get", "/_mock/ui/{name}")}
    assert {("get", "/_mock/" + op.path[1:]) for op in CONTROL_OPERATIONS if op.open} == open_routes
    for route, op in control.items():
        assert op["tags"] == ["mock"]
        if route in open_routes:  # the dashboard's static files: no token, nothing to refuse
            assert op["security"] == []
            continue
        assert op["security"] == [{"controlToken": []}, {}]
        assert {"401", "403"} <= set(op["responses"])
    stream = control[("get", "/_mock/stream")]["responses"]["200"]["content"]
    assert stream == {"text/event-stream": {"schema": {"type": "string"}}}
    for _, _, op in operations(document):
        if op["tags"] != ["mock"]:
            assert "security" not in op  # the document's bearerAuth
    assert (
        document["paths"]["/api/v1/replay/sessions/{sid}/tool-filter"]["post"]["operationId"]
        == "replace_tool_filter"
    )


def test_operation_ids_are_unique_snake_case_method_names_and_tags_are_declared(
    document: dict[str, Any],
) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in ids), ids
    assert {"propose", "submit_receipt", "kill_session", "get_governance_plan"} <= set(ids)
    declared = [tag["name"] for tag in document["tags"]]
    assert all(tag["description"] for tag in document["tags"])
    used = {tag for _, _, op in operations(document) for tag in op["tags"]}
    assert used == set(declared)
    assert all(len(op["tags"]) == 1 for _, _, op in operations(document))


def test_every_component_is_titled_with_its_own_name_and_keeps_its_prose(
    document: dict[str, Any],
) -> None:
    components = document["components"]["schemas"]
    assert all(schema["title"] == name for name, schema in components.items())
    preflight = components["PreflightRequest"]["description"]
    assert preflight.startswith("Preflight a model call (request body).")


def test_the_control_token_is_a_bearer_scheme_that_says_when_it_is_needed(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["controlToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "loopback" in scheme["description"]


def test_control_components_are_named_mock_and_their_bodies_have_examples(
    document: dict[str, Any], registry: SchemaRegistry
) -> None:
    components = document["components"]["schemas"]
    for name in ("MockClockAdvanceRequest", "MockJournalResponse", "MockJournalEntry"):
        assert components[name]["title"] == name
    paths = document["paths"]
    advance = paths["/_mock/clock/advance"]["post"]
    assert advance["requestBody"]["required"] is True
    media = advance["requestBody"]["content"]["application/json"]
    assert media["schema"] == {"$ref": "#/components/schemas/MockClockAdvanceRequest"}
    for op in CONTROL_OPERATIONS:
        if op.request:
            body = paths["/_mock" + op.path][op.method]["requestBody"]["content"]
            assert registry.validate(op.request, body["application/json"]["example"]) == []
    loading = paths["/_mock/scenario"]["post"]
    assert "application/yaml" in loading["requestBody"]["description"]
    invalid = loading["responses"]["422"]["content"]["application/json"]["schema"]
    assert invalid == {"$ref": "#/components/schemas/MockScenarioErrorResponse"}


def test_an_alias_component_gives_way_to_its_target(document: dict[str, Any]) -> None:
    """responses/error is the ErrorEnvelope: one model, not two of the same shape."""
    components = document["components"]["schemas"]
    assert "ErrorResponse" not in components
    conflict = document["components"]["responses"]["Conflict"]["content"]["application/json"]
    assert conflict["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert '"#/components/schemas/ErrorResponse"' not in json.dumps(document)


def test_a_boolean_const_is_written_as_a_one_value_enum_with_the_same_meaning(
    document: dict[str, Any],
) -> None:
    assert '"const": true' not in json.dumps(document)
    reset = document["components"]["schemas"]["MockResetResponse"]
    assert reset["properties"]["ok"] == {"type": "boolean", "enum": [True]}
    root = {"$ref": "#/components/schemas/MockResetResponse", "components": document["components"]}
    validator = Draft202012Validator(root)
    registry = SchemaRegistry.load()
    clock = {"now": TS, "start": TS, "mode": "frozen"}
    for ok in (True, False, 1, "true"):
        answer = {"ok": ok, "scenario": None, "clock": clock}
        assert validator.is_valid(answer) is (ok is True)
        assert (registry.validate("control/reset", answer) == []) is (ok is True)


def test_every_request_body_has_an_example_its_schema_accepts_in_strict_mode(
    document: dict[str, Any], registry: SchemaRegistry
) -> None:
    bodies = by_endpoint(document)
    with_body = [endpoint for endpoint, op in bodies.items() if "requestBody" in op]
    assert sorted(with_body) == sorted(REQUEST_ENDPOINTS)
    for endpoint in with_body:
        media = bodies[endpoint]["requestBody"]["content"]["application/json"]
        registry.validate_request(endpoint, media["example"], "strict")


def test_every_object_schema_says_whether_it_takes_unknown_members() -> None:
    """Generators read an object without `additionalProperties` as closed; say it."""

    def silent(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            kind = node.get("type")
            is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
            if is_object and "additionalProperties" not in node:
                yield where
            for key, value in node.items():
                yield from silent(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from silent(value, f"{where}/{index}")

    found = [
        hit
        for path in sorted(schemas_dir().rglob("*.schema.json"))
        for hit in silent(json.loads(path.read_text()), path.name + "#")
    ]
    assert found == []


def test_free_form_objects_are_declared_free_form_in_the_document(
    document: dict[str, Any],
) -> None:
    components = document["components"]["schemas"]
    assert components["FreeObject"]["additionalProperties"] is True
    contract = components["CreateSessionRequest"]["properties"]["contract"]
    assert contract["properties"]["compiled_session"]["additionalProperties"] is True
    assert contract["additionalProperties"] is False


def test_every_ref_in_the_openapi_document_resolves_inside_it(document: dict[str, Any]) -> None:
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    declared = document["components"]["parameters"]
    for path, _, op in operations(document):
        names = {declared[p["$ref"].rsplit("/", 1)[-1]]["name"] for p in op.get("parameters", [])}
        wanted = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert wanted <= names, path


def test_every_operation_lists_its_success_and_error_statuses(document: dict[str, Any]) -> None:
    by_id = by_endpoint(document)
    assert {"200", "201"} <= set(by_id["create_session"]["responses"])
    assert "201" in by_id["labels"]["responses"] and "201" in by_id["offer_handoff"]["responses"]
    for endpoint, op in by_id.items():
        statuses = set(op["responses"])
        assert "401" in statuses, endpoint
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= statuses, endpoint
            assert "404" in statuses or endpoint == "create_session"
    assert "422" in by_id["governance_plan"]["responses"]
    assert [p["$ref"] for p in by_id["governance_plan"]["parameters"]] == [
        "#/components/parameters/agent",
        "#/components/parameters/environment",
    ]
    assert {op.endpoint for op in OPERATIONS} == set(ENDPOINTS)


def test_request_bodies_are_required_only_when_their_schema_requires_a_field(
    document: dict[str, Any],
) -> None:
    by_id = by_endpoint(document)
    assert by_id["preflight"]["requestBody"]["required"] is True
    assert by_id["kill"]["requestBody"]["required"] is False
    assert "requestBody" not in by_id["get_session"]


def test_the_openapi_schemas_judge_bodies_exactly_like_the_registry(
    document: dict[str, Any],
) -> None:
    def validator(component: str) -> Any:
        root = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
        return Draft202012Validator(root)

    session = validator("GetSessionResponse")
    assert session.is_valid({"session": a_session()})
    assert not session.is_valid({"session": a_session(extra=1)})
    request = validator("ProposalsRequest")
    assert request.is_valid(VALID["proposals"][1])
    assert not request.is_valid({**VALID["proposals"][1], "extra": 1})
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_answers_link_to_the_operations_whose_path_ids_they_supply(
    document: dict[str, Any],
) -> None:
    by_id = by_endpoint(document)
    created = by_id["create_session"]["responses"]["201"]["links"]
    assert created["Preflight"] == {
        "operationId": "preflight",
        "parameters": {"sid": "$response.body#/session/session_id"},
    }
    assert {link["operationId"] for link in created.values()} == {
        op.op_id for op in OPERATIONS if op.path_params == ("sid",)
    }
    offered = by_id["offer_handoff"]["responses"]["201"]["links"]
    assert offered["CompleteHandoff"]["parameters"] == {
        "wid": "$response.body#/handoff/workflow_id",
        "hid": "$response.body#/handoff/handoff_id",
    }
    assert set(offered) == {"GetWorkflow", "CompleteHandoff", "ReclaimHandoff", "KillWorkflow"}
