"""Compiling contracts: what compiles, every compile error, the hash, the JSONPath subset."""

from __future__ import annotations

from typing import Any

import pytest

from vesanor_mock.domain.contracts import (
    CompiledSession,
    Invariant,
    OutputCheck,
    compile_contracts_dir,
    compile_session,
    compiled_hash,
    resolve_path,
)
from vesanor_mock.domain.jsonpath import PathSyntaxError
from vesanor_mock.errors import CompileError, FieldError

from .contracts_examples import refund_contract, refund_tools


def errors_of(raw: Any) -> list[FieldError]:
    """The errors compile_session raises for `raw` (the test fails if it compiles)."""
    with pytest.raises(CompileError) as raised:
        compile_session(raw)
    return raised.value.errors


def error_at(raw: Any, path: str) -> FieldError:
    """The one error at a JSON Pointer (the test fails if there is none or several)."""
    found = [e for e in errors_of(raw) if e.path == path]
    assert len(found) == 1, f"errors at {path}: {found}; all: {errors_of(raw)}"
    return found[0]


def with_tool(name: str, **fields: Any) -> dict[str, Any]:
    """The refund contract with one tool's fields replaced or added."""
    contract = refund_contract()
    contract["tools"].setdefault(name, {}).update(fields)
    return contract


def invariant(**fields: Any) -> dict[str, Any]:
    """The refund contract with issue_refund's first invariant replaced."""
    return with_tool("issue_refund", argument_value_invariants=[fields])


def output_check(**fields: Any) -> dict[str, Any]:
    """The refund contract with issue_refund's with_output check replaced."""
    precondition = {"requires_prior_tool": "verify_customer", "with_output": [fields]}
    return with_tool("issue_refund", preconditions=[precondition])


# --- what compiles --------------------------------------------------------------------


def test_the_refund_example_compiles_into_phases_transitions_and_tools() -> None:
    compiled = compile_session(refund_contract())
    assert isinstance(compiled, CompiledSession)
    assert compiled.agent == "refund-bot"
    assert compiled.phases == ("start", "verified", "refunded")
    assert compiled.initial_phase == "start"
    assert compiled.terminal_phases == ("refunded",)
    assert compiled.legal_next("start") == ["verified"]
    assert compiled.legal_next("refunded") == []
    assert compiled.legal_next("nowhere") == []
    assert compiled.unmatched_policy == "block"
    assert compiled.risk_defaults == {"read": "allow", "write": "allow", "destructive": "block"}
    assert sorted(compiled.tools) == sorted(refund_tools())


def test_a_tool_contract_keeps_what_changes_runtime_behaviour() -> None:
    refund = compile_session(refund_contract()).tools["issue_refund"]
    assert refund.side_effect == "financial"
    assert refund.commit_requirement == "acknowledged"
    assert refund.evidence_class == "local_transaction"
    assert refund.valid_in_phases == ("verified",)
    assert refund.advances_to == "refunded"
    [precondition] = refund.preconditions
    assert precondition.requires_prior_tool == "verify_customer"
    [check] = precondition.with_output
    assert (check.path, check.operator, check.value) == ("$.verified", "equals", True)
    [rule] = refund.invariants
    assert (rule.path, rule.operator, rule.value, rule.rule_id) == (
        "$.amount",
        "lte",
        500,
        "refund-cap",
    )


def test_session_limits_are_compiled_into_their_fields() -> None:
    limits = compile_session(refund_contract()).limits
    assert (limits.max_steps, limits.max_tool_calls, limits.max_cost_per_session) == (20, 10, 5.0)
    assert limits.max_calls_per_tool == {"lookup_order": 3}
    assert (limits.loop_window, limits.loop_threshold) == (5, 3)
    assert (limits.breaker_consecutive_blocks, limits.breaker_consecutive_errors) == (5, 3)


def test_a_tool_without_side_effect_evidence_class_or_commit_requirement_does_not_compile() -> None:
    errors = errors_of(refund_contract(tools={"ping": {}}))
    assert [(e.path, e.keyword) for e in errors] == [
        ("/tools/ping/side_effect", "required"),
        ("/tools/ping/evidence_class", "required"),
        ("/tools/ping/commit_requirement", "required"),
    ]


def test_a_minimal_tool_gets_the_documented_defaults() -> None:
    minimal = {
        "side_effect": "read",
        "evidence_class": "unverifiable",
        "commit_requirement": "none",
    }
    contract = refund_contract(tools={"ping": minimal}, risk_defaults=None, session_limits=None)
    compiled = compile_session(contract)
    ping = compiled.tools["ping"]
    assert ping.gate is None and ping.valid_in_phases is None and ping.advances_to is None
    assert ping.preconditions == () and ping.invariants == () and ping.forbids_after == ()
    assert ping.checkpoint is None
    assert compiled.risk_defaults == {}
    assert compiled.limits.max_steps is None and compiled.limits.max_calls_per_tool == {}


def test_optional_top_level_fields_default_to_empty_and_block() -> None:
    contract = refund_contract()
    for key in ("transitions", "tools", "session_limits", "risk_defaults", "unmatched_policy"):
        del contract[key]
    contract["phases"] = [{"name": "only", "initial": True, "terminal": True}]
    compiled = compile_session(contract)
    assert compiled.tools == {} and compiled.transitions == {}
    assert compiled.unmatched_policy == "block"


def test_a_phase_mapped_to_null_has_no_transitions() -> None:
    contract = refund_contract(
        transitions={"start": ["verified"], "verified": ["refunded"], "refunded": None}
    )
    assert compile_session(contract).legal_next("refunded") == []


def test_published_fields_the_mock_does_not_enforce_are_kept_and_listed() -> None:
    contract = with_tool("lookup_order", timeouts={"total_ms": 500}, golden_cases=[1])
    contract["aggregates"] = [{"kind": "sum"}]
    compiled = compile_session(contract)
    assert compiled.raw["aggregates"] == [{"kind": "sum"}]
    assert compiled.tools["lookup_order"].raw["timeouts"] == {"total_ms": 500}
    assert compiled.unenforced == (
        "aggregates",
        "tools.lookup_order.timeouts",
        "tools.lookup_order.golden_cases",
    )


@pytest.mark.parametrize(
    ("where", "key", "pointer", "guess"),
    [
        ("session", "sessionLimits", "/sessionLimits", "session_limits"),
        ("session", "risk_default", "/risk_default", "risk_defaults"),
        ("session", "description", "/description", None),
        ("limits", "max_step", "/session_limits/max_step", "max_steps"),
        ("tool", "forbid_after", "/tools/issue_refund/forbid_after", "forbids_after"),
        ("tool", "pre_conditions", "/tools/issue_refund/pre_conditions", "preconditions"),
        ("tool", "sideEffect", "/tools/issue_refund/sideEffect", "side_effect"),
    ],
)
def test_a_key_that_is_not_a_published_field_is_refused_with_a_did_you_mean(
    where: str, key: str, pointer: str, guess: str | None
) -> None:
    contract = refund_contract()
    target = {
        "session": contract,
        "limits": contract["session_limits"],
        "tool": contract["tools"]["issue_refund"],
    }[where]
    target[key] = 3
    error = error_at(contract, pointer)
    assert error.keyword == ("unknown_limit" if where == "limits" else "unknown_field")
    if guess is None:
        assert "did you mean" not in error.message
    else:
        assert f"did you mean {guess!r}?" in error.message


@pytest.mark.parametrize(
    ("fields", "pointer", "guess"),
    [
        ({"retries": {"max": 0}}, "/tools/lookup_order/retries/max", "max_attempts"),
        (
            {"timeouts": {"execution_ms": 5}},
            "/tools/lookup_order/timeouts/execution_ms",
            "total_ms",
        ),
        (
            {"rate_limits": {"on_429": {"respect_retry_afterr": True}}},
            "/tools/lookup_order/rate_limits/on_429/respect_retry_afterr",
            "respect_retry_after",
        ),
        (
            {"assertions": {"output_invariant": []}},
            "/tools/lookup_order/assertions/output_invariant",
            "output_invariants",
        ),
        (
            {"transitions": {"advance_to": "verified"}},
            "/tools/lookup_order/transitions/advance_to",
            "advances_to",
        ),
        (
            {"preconditions": [{"requires_prior": "verify_customer"}]},
            "/tools/lookup_order/preconditions/0/requires_prior",
            "requires_prior_tool",
        ),
        ({"checkpoint": {"reasons": "x"}}, "/tools/lookup_order/checkpoint/reasons", "reason"),
        (
            {"execution_constraints": {"argument": []}},
            "/tools/lookup_order/execution_constraints/argument",
            "arguments",
        ),
        (
            {"binds": [{"name": "order", "form": "$.output.id"}]},
            "/tools/lookup_order/binds/0/form",
            "from",
        ),
    ],
)
def test_a_misspelled_published_sub_field_is_refused_with_a_did_you_mean(
    fields: dict[str, Any], pointer: str, guess: str
) -> None:
    errors = [e for e in errors_of(with_tool("lookup_order", **fields)) if e.path == pointer]
    assert len(errors) == 1
    assert f"did you mean {guess!r}?" in errors[0].message


def test_a_misspelled_phase_flag_is_refused_with_a_did_you_mean() -> None:
    contract = refund_contract()
    contract["phases"][2]["terminl"] = True
    assert "did you mean 'terminal'?" in error_at(contract, "/phases/2/terminl").message


def test_execution_constraints_compile_like_argument_invariants() -> None:
    rule = {"path": "$.amount", "operator": "lte", "value": 5}
    compiled = compile_session(
        with_tool("issue_refund", execution_constraints={"arguments": [rule]})
    )
    [constraint] = compiled.tools["issue_refund"].constraints
    assert (constraint.path, constraint.operator, constraint.value) == ("$.amount", "lte", 5)
    bad = with_tool("issue_refund", execution_constraints={"arguments": [{"path": "amount"}]})
    assert error_at(bad, "/tools/issue_refund/execution_constraints/arguments/0/path")


def test_binds_compile_in_the_published_list_form_and_the_older_map_form() -> None:
    listed = [
        {"name": "order", "from": "$.arguments.order_id"},
        {"name": "c", "from": "$.output.c"},
    ]
    compiled = compile_session(with_tool("lookup_order", binds=listed))
    binds = compiled.tools["lookup_order"].binds
    assert [(b.name, b.path, b.root) for b in binds] == [
        ("order", "$.arguments.order_id", "call"),
        ("c", "$.output.c", "call"),
    ]
    assert binds[0].read({"order_id": "o-1"}, None) == (True, "o-1")
    mapped = compile_session(with_tool("lookup_order", binds={"c": "$.c"})).tools["lookup_order"]
    assert [(b.name, b.root) for b in mapped.binds] == [("c", "output")]
    assert mapped.binds[0].read({}, {"c": 7}) == (True, 7)


def test_a_binding_from_anywhere_but_the_arguments_or_the_output_does_not_compile() -> None:
    contract = with_tool("lookup_order", binds=[{"name": "x", "from": "$.result.id"}])
    assert error_at(contract, "/tools/lookup_order/binds/0/from").keyword == "binds"
    contract = with_tool("lookup_order", binds=[{"from": "$.output.id"}])
    assert error_at(contract, "/tools/lookup_order/binds/0/name").keyword == "required"


def test_the_ref_operator_takes_a_binding_name() -> None:
    compiled = compile_session(invariant(path="$.order_id", operator="ref", value="order"))
    [rule] = compiled.tools["issue_refund"].invariants
    assert rule.evaluate({"order_id": "o-1"}, {"order": "o-1"})[0] is True
    assert rule.evaluate({"order_id": "o-2"}, {"order": "o-1"})[0] is False
    assert rule.evaluate({"order_id": "o-1"}, {})[0] is False
    assert error_at(
        invariant(path="$.x", operator="ref", value=3),
        "/tools/issue_refund/argument_value_invariants/0/value",
    )


def test_the_compiled_session_does_not_share_state_with_its_input() -> None:
    contract = refund_contract()
    compiled = compile_session(contract)
    contract["tools"]["issue_refund"]["side_effect"] = "read"
    contract["agent"] = "changed"
    assert compiled.raw["tools"]["issue_refund"]["side_effect"] == "financial"
    assert compiled.raw["agent"] == "refund-bot"


def test_regex_invariants_are_compiled_once_at_load() -> None:
    compiled = compile_session(invariant(path="$.email", operator="regex", value="@example\\.com$"))
    [rule] = compiled.tools["issue_refund"].invariants
    assert rule.pattern is not None
    assert rule.pattern.search("me@example.com") and not rule.pattern.search("me@example.org")


def test_an_invariant_takes_its_rule_id_from_rule_id_or_id() -> None:
    by_rule_id = invariant(path="$.a", operator="exists", value=True, rule_id="r1")
    by_id = invariant(path="$.a", operator="exists", value=True, id="r2")
    none = invariant(path="$.a", operator="exists", value=True)
    ids = [
        compile_session(c).tools["issue_refund"].invariants[0].rule_id
        for c in (by_rule_id, by_id, none)
    ]
    assert ids == ["r1", "r2", None]


def test_checks_built_by_hand_parse_their_path_and_regex() -> None:
    rule = Invariant("$.order.id", "regex", "^ord_")
    assert rule.evaluate({"order": {"id": "ord_1"}}) == (True, True, "ord_1")
    check = OutputCheck("$.verified", "equals", True)
    assert check.evaluate({"verified": False}) == (False, True, False)
    assert OutputCheck("$", "exists", True).evaluate(None) == (True, True, None)


# --- the hash -------------------------------------------------------------------------


def test_the_hash_is_sha256_of_canonical_json_computed_by_hand() -> None:
    # printf '%s' '{"a":"é"}' | sha256sum
    assert compiled_hash({"a": "é"}) == (
        "sha256:b3a092a6af48807fa9482b2ee140105575daa26d5b24b3c0e60a7e2dee6683b1"
    )


def test_the_hash_sorts_keys_removes_whitespace_and_keeps_non_ascii_as_is() -> None:
    document = {"schema_version": "1.0", "b": [1, 2.5, None, True], "agent": "remboursé-bot"}
    # printf '%s' '{"agent":"remboursé-bot","b":[1,2.5,null,true],"schema_version":"1.0"}' \
    #   | sha256sum
    assert compiled_hash(document) == (
        "sha256:583005e793ee333251a00a6875197d2dda596879d8a819891651cdfa020eee64"
    )


def test_the_hash_does_not_depend_on_key_order() -> None:
    contract = refund_contract()
    reordered = dict(reversed(list(contract.items())))
    assert compiled_hash(reordered) == compiled_hash(contract)


def test_the_compiled_session_carries_the_hash_of_its_raw_document() -> None:
    contract = refund_contract()
    assert compile_session(contract).compiled_hash == compiled_hash(contract)
    assert compiled_hash(contract).startswith("sha256:")


def test_a_document_that_is_not_plain_json_is_a_compile_error() -> None:
    error = error_at(refund_contract(description={1, 2}), "")
    assert error.keyword == "type"


# --- compile errors: the document and its header --------------------------------------


def test_a_compiled_session_that_is_not_an_object_is_a_compile_error() -> None:
    assert [e.path for e in errors_of(["not", "an", "object"])] == [""]


def test_every_compile_error_carries_the_replay_compile_error_reason_code() -> None:
    with pytest.raises(CompileError) as raised:
        compile_session(refund_contract(schema_version="2.0"))
    assert raised.value.status == 422 and raised.value.code == "COMPILE_ERROR"
    assert raised.value.details["errors"][0]["reason_code"] == "replay_compile_error"


@pytest.mark.parametrize("version", ["2.0", "1", 1.0, None])
def test_schema_version_must_be_the_string_1_0(version: Any) -> None:
    assert error_at(refund_contract(schema_version=version), "/schema_version").keyword == "const"


def test_schema_version_is_required() -> None:
    contract = refund_contract()
    del contract["schema_version"]
    assert error_at(contract, "/schema_version").keyword == "required"


def test_agent_is_a_required_non_empty_string() -> None:
    contract = refund_contract()
    del contract["agent"]
    assert error_at(contract, "/agent").keyword == "required"
    assert error_at(refund_contract(agent=""), "/agent").keyword == "type"
    assert error_at(refund_contract(agent=7), "/agent").keyword == "type"


def test_unmatched_policy_is_block_or_allow() -> None:
    assert error_at(refund_contract(unmatched_policy="deny"), "/unmatched_policy").keyword == "enum"
    assert compile_session(refund_contract(unmatched_policy="allow")).unmatched_policy == "allow"


def test_all_errors_are_reported_together() -> None:
    contract = refund_contract(schema_version="0.9", unmatched_policy="maybe")
    contract["tools"]["delete_account"]["evidence_class"] = "ack_only"
    paths = {e.path for e in errors_of(contract)}
    assert paths == {"/schema_version", "/unmatched_policy", "/tools/delete_account/evidence_class"}


# --- compile errors: phases and transitions -------------------------------------------


def test_phases_are_required_and_must_be_a_list() -> None:
    contract = refund_contract()
    del contract["phases"]
    assert [(e.path, e.keyword) for e in errors_of(contract)] == [("/phases", "required")]
    assert error_at(refund_contract(phases={"start": {}}), "/phases").keyword == "type"


def test_each_phase_is_an_object_with_a_name() -> None:
    phases = refund_contract()["phases"] + ["loose", {"initial": False}]
    errors = errors_of(refund_contract(phases=phases))
    assert ("/phases/3", "type") in [(e.path, e.keyword) for e in errors]
    assert ("/phases/4/name", "type") in [(e.path, e.keyword) for e in errors]


def test_phase_names_are_unique() -> None:
    phases = refund_contract()["phases"] + [{"name": "verified"}]
    assert error_at(refund_contract(phases=phases), "/phases/3/name").keyword == "unique"


def test_initial_and_terminal_must_be_booleans() -> None:
    phases = refund_contract()["phases"]
    phases[2]["terminal"] = "yes"
    assert error_at(refund_contract(phases=phases), "/phases/2/terminal").keyword == "type"


def test_a_contract_without_an_initial_phase_is_a_compile_error() -> None:
    phases = refund_contract()["phases"]
    phases[0]["initial"] = False
    error = error_at(refund_contract(phases=phases), "/phases")
    assert error.keyword == "initial_phase"


def test_several_initial_phases_are_a_compile_error_pointing_at_the_extra_ones() -> None:
    phases = refund_contract()["phases"]
    phases[1]["initial"] = True
    error = error_at(refund_contract(phases=phases), "/phases/1/initial")
    assert error.keyword == "initial_phase"
    assert "start, verified" in error.message


def test_a_contract_without_a_terminal_phase_is_a_compile_error() -> None:
    phases = refund_contract()["phases"]
    phases[2]["terminal"] = False
    assert error_at(refund_contract(phases=phases), "/phases").keyword == "terminal_phase"


def test_an_empty_phase_list_has_neither_initial_nor_terminal_phase() -> None:
    keywords = {e.keyword for e in errors_of(refund_contract(phases=[], transitions={}, tools={}))}
    assert keywords == {"initial_phase", "terminal_phase"}


def test_a_non_terminal_phase_no_transition_reaches_is_a_compile_error_pointing_at_it() -> None:
    contract = refund_contract(transitions={"start": ["refunded"], "refunded": []})
    error = error_at(contract, "/phases/1")
    assert error.keyword == "unreachable_phase"
    assert "verified" in error.message


def test_an_unreachable_terminal_phase_compiles() -> None:
    phases = [*refund_contract()["phases"], {"name": "abandoned", "terminal": True}]
    compiled = compile_session(refund_contract(phases=phases))
    assert compiled.terminal_phases == ("refunded", "abandoned")


def test_reachability_follows_transitions_through_several_hops() -> None:
    phases = [{"name": n} for n in ("a", "b", "c", "d")]
    phases[0]["initial"] = True
    phases[3]["terminal"] = True
    contract = refund_contract(
        phases=phases, transitions={"a": ["b"], "b": ["c"], "c": ["d", "a"]}, tools={}
    )
    assert compile_session(contract).legal_next("c") == ["d", "a"]


def test_a_transition_to_an_unknown_phase_is_a_compile_error() -> None:
    contract = refund_contract(
        transitions={"start": ["verified", "nowhere"], "verified": ["refunded"]}
    )
    assert error_at(contract, "/transitions/start/1").keyword == "unknown_phase"


def test_a_transition_from_an_unknown_phase_is_a_compile_error() -> None:
    contract = refund_contract(
        transitions={"start": ["verified"], "verified": ["refunded"], "limbo": []}
    )
    assert error_at(contract, "/transitions/limbo").keyword == "unknown_phase"


def test_pointers_escape_slash_and_tilde_in_keys() -> None:
    contract = refund_contract(
        transitions={"start": ["verified"], "verified": ["refunded"], "a/b~c": []}
    )
    assert error_at(contract, "/transitions/a~1b~0c").keyword == "unknown_phase"


def test_transitions_must_map_phases_to_lists_of_names() -> None:
    assert error_at(refund_contract(transitions=["start"]), "/transitions").keyword == "type"
    contract = refund_contract(transitions={"start": "verified", "verified": ["refunded"]})
    assert error_at(contract, "/transitions/start").keyword == "type"
    contract = refund_contract(transitions={"start": [1], "verified": ["refunded"]})
    assert error_at(contract, "/transitions/start/0").keyword == "type"


# --- compile errors: tools ------------------------------------------------------------


def test_tools_must_map_a_name_to_an_object() -> None:
    assert error_at(refund_contract(tools=[{"tool": "x"}]), "/tools").keyword == "type"
    contract = with_tool("lookup_order")
    contract["tools"]["lookup_order"] = "read"
    assert error_at(contract, "/tools/lookup_order").keyword == "type"


def test_a_tool_field_must_equal_its_key() -> None:
    error = error_at(with_tool("lookup_order", tool="find_order"), "/tools/lookup_order/tool")
    assert error.keyword == "tool_name"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("side_effect", "dangerous"),
        ("evidence_class", "signed"),
        ("commit_requirement", "always"),
        ("gate", "maybe"),
        ("side_effect", 3),
    ],
)
def test_enumerated_tool_fields_only_take_their_values(field: str, value: Any) -> None:
    error = error_at(with_tool("lookup_order", **{field: value}), f"/tools/lookup_order/{field}")
    assert error.keyword == "enum"


@pytest.mark.parametrize("side_effect", ["destructive", "financial", "admin"])
def test_ack_only_evidence_on_a_high_risk_tool_is_a_compile_error(side_effect: str) -> None:
    contract = with_tool("lookup_order", side_effect=side_effect, evidence_class="ack_only")
    error = error_at(contract, "/tools/lookup_order/evidence_class")
    assert error.keyword == "ack_only_high_risk"


@pytest.mark.parametrize("side_effect", ["read", "write"])
def test_ack_only_evidence_on_a_low_risk_tool_compiles(side_effect: str) -> None:
    contract = with_tool("lookup_order", side_effect=side_effect, evidence_class="ack_only")
    assert compile_session(contract).tools["lookup_order"].evidence_class == "ack_only"


def test_a_tool_valid_in_an_unknown_phase_is_a_compile_error() -> None:
    contract = with_tool("lookup_order", transitions={"valid_in_phases": ["start", "closed"]})
    path = "/tools/lookup_order/transitions/valid_in_phases/1"
    assert error_at(contract, path).keyword == "unknown_phase"


def test_a_tool_advancing_to_an_unknown_phase_is_a_compile_error() -> None:
    contract = with_tool("lookup_order", transitions={"advances_to": "closed"})
    assert (
        error_at(contract, "/tools/lookup_order/transitions/advances_to").keyword == "unknown_phase"
    )


def test_tool_transitions_have_typed_fields() -> None:
    assert (
        error_at(
            with_tool("lookup_order", transitions=["start"]), "/tools/lookup_order/transitions"
        ).keyword
        == "type"
    )
    contract = with_tool("lookup_order", transitions={"advances_to": ["verified"]})
    assert error_at(contract, "/tools/lookup_order/transitions/advances_to").keyword == "type"
    contract = with_tool("lookup_order", transitions={"valid_in_phases": "start"})
    assert error_at(contract, "/tools/lookup_order/transitions/valid_in_phases").keyword == "type"


def test_forbids_after_is_a_list_of_tool_names() -> None:
    compiled = compile_session(with_tool("delete_account", forbids_after=["issue_refund"]))
    assert compiled.tools["delete_account"].forbids_after == ("issue_refund",)
    error = error_at(
        with_tool("delete_account", forbids_after="issue_refund"),
        "/tools/delete_account/forbids_after",
    )
    assert error.keyword == "type"
    error = error_at(
        with_tool("delete_account", forbids_after=[1]), "/tools/delete_account/forbids_after/0"
    )
    assert error.keyword == "type"


def test_a_checkpoint_is_an_object_with_an_optional_reason() -> None:
    assert compile_session(refund_contract()).tools["escalate"].checkpoint == {
        "reason": "human approval"
    }
    assert compile_session(with_tool("escalate", checkpoint={})).tools["escalate"].checkpoint == {}
    assert (
        error_at(with_tool("escalate", checkpoint=True), "/tools/escalate/checkpoint").keyword
        == "type"
    )
    error = error_at(
        with_tool("escalate", checkpoint={"reason": 5}), "/tools/escalate/checkpoint/reason"
    )
    assert error.keyword == "type"


# --- compile errors: invariants -------------------------------------------------------

INVARIANT = "/tools/issue_refund/argument_value_invariants/0"


def test_an_invariant_with_an_unknown_operator_is_a_compile_error() -> None:
    error = error_at(
        invariant(path="$.amount", operator="between", value=[1, 2]), INVARIANT + "/operator"
    )
    assert error.keyword == "invariant"
    assert "between" in error.message


@pytest.mark.parametrize(
    "path", ["amount", "$..amount", "$.a[*]", "$['a']", "$.a[-1]", "", "$.", "$.a b", 5]
)
def test_an_invariant_path_outside_the_jsonpath_subset_is_a_compile_error(path: Any) -> None:
    error = error_at(invariant(path=path, operator="exists", value=True), INVARIANT + "/path")
    assert error.keyword == "invariant"


@pytest.mark.parametrize(
    "path", ["$", "$.amount", "$.customer.id", "$.items[0]", "$.items[10].sku"]
)
def test_paths_in_the_jsonpath_subset_compile(path: str) -> None:
    compile_session(invariant(path=path, operator="exists", value=True))


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("regex", "(unclosed"),
        ("regex", 5),
        ("one_of", "a"),
        ("min_length", -1),
        ("max_length", "3"),
        ("max_length", True),
        ("min_length", 1.5),
        ("exists", "yes"),
        ("exists", 1),
        ("gte", "500"),
        ("lt", None),
        ("lte", False),
    ],
)
def test_an_invariant_with_a_bad_operand_is_a_compile_error(operator: str, value: Any) -> None:
    error = error_at(
        invariant(path="$.amount", operator=operator, value=value), INVARIANT + "/value"
    )
    assert error.keyword == "invariant"


def test_an_invariant_needs_a_value() -> None:
    assert (
        error_at(invariant(path="$.amount", operator="equals"), INVARIANT + "/value").keyword
        == "invariant"
    )


def test_equals_may_compare_with_null() -> None:
    compiled = compile_session(invariant(path="$.coupon", operator="equals", value=None))
    assert compiled.tools["issue_refund"].invariants[0].value is None


def test_an_invariant_must_be_an_object_in_a_list() -> None:
    assert (
        error_at(
            with_tool("issue_refund", argument_value_invariants=["$.a lte 3"]), INVARIANT
        ).keyword
        == "invariant"
    )
    contract = with_tool("issue_refund", argument_value_invariants={"path": "$.a"})
    assert error_at(contract, "/tools/issue_refund/argument_value_invariants").keyword == "type"


def test_a_rule_id_must_be_a_string() -> None:
    contract = invariant(path="$.a", operator="exists", value=True, id=7)
    assert error_at(contract, INVARIANT + "/id").keyword == "invariant"


# --- compile errors: preconditions ----------------------------------------------------

PRECONDITION = "/tools/issue_refund/preconditions/0"
CHECK = PRECONDITION + "/with_output/0"


def test_with_output_accepts_each_of_its_four_operators() -> None:
    for operator, value in (("equals", "ok"), ("exists", False), ("gte", 1), ("lte", 2.5)):
        compiled = compile_session(output_check(path="$.score", **{operator: value}))
        check = compiled.tools["issue_refund"].preconditions[0].with_output[0]
        assert (check.operator, check.value) == (operator, value)


def test_a_with_output_check_needs_exactly_one_operator() -> None:
    assert error_at(output_check(path="$.verified"), CHECK).keyword == "precondition"
    assert (
        error_at(output_check(path="$.verified", equals=True, exists=True), CHECK).keyword
        == "precondition"
    )


@pytest.mark.parametrize("operator", ["not_equals", "gt", "lt", "one_of", "regex", "min_length"])
def test_operators_beyond_the_four_are_refused_in_with_output(operator: str) -> None:
    contract = output_check(path="$.verified", equals=True, **{operator: 1})
    assert error_at(contract, f"{CHECK}/{operator}").keyword == "precondition"


@pytest.mark.parametrize(("operator", "value"), [("gte", "1"), ("lte", True), ("exists", "true")])
def test_a_with_output_operand_of_the_wrong_type_is_a_compile_error(
    operator: str, value: Any
) -> None:
    assert (
        error_at(output_check(path="$.score", **{operator: value}), f"{CHECK}/{operator}").keyword
        == "precondition"
    )


def test_a_with_output_path_must_be_in_the_subset() -> None:
    assert (
        error_at(output_check(path="verified", equals=True), CHECK + "/path").keyword
        == "precondition"
    )


def test_a_precondition_must_name_the_prior_tool() -> None:
    contract = with_tool("issue_refund", preconditions=[{"with_output": []}])
    assert error_at(contract, PRECONDITION + "/requires_prior_tool").keyword == "precondition"


def test_preconditions_are_a_list_of_objects_with_a_list_of_checks() -> None:
    contract = with_tool("issue_refund", preconditions={"requires_prior_tool": "verify_customer"})
    assert error_at(contract, "/tools/issue_refund/preconditions").keyword == "type"
    assert (
        error_at(with_tool("issue_refund", preconditions=["verify_customer"]), PRECONDITION).keyword
        == "precondition"
    )
    contract = with_tool(
        "issue_refund", preconditions=[{"requires_prior_tool": "x", "with_output": {"path": "$"}}]
    )
    assert error_at(contract, PRECONDITION + "/with_output").keyword == "type"
    contract = with_tool(
        "issue_refund", preconditions=[{"requires_prior_tool": "x", "with_output": ["$.a"]}]
    )
    assert error_at(contract, CHECK).keyword == "precondition"


def test_a_precondition_may_name_a_tool_without_a_contract() -> None:
    contract = with_tool("issue_refund", preconditions=[{"requires_prior_tool": "external_check"}])
    assert compile_session(contract).tools["issue_refund"].preconditions[0].with_output == ()


# --- compile errors: risk defaults and limits -----------------------------------------


def test_risk_defaults_map_known_side_effects_to_allow_or_block() -> None:
    assert (
        error_at(
            refund_contract(risk_defaults={"network": "block"}), "/risk_defaults/network"
        ).keyword
        == "enum"
    )
    assert (
        error_at(refund_contract(risk_defaults={"write": "deny"}), "/risk_defaults/write").keyword
        == "enum"
    )
    assert (
        error_at(refund_contract(risk_defaults={"write": None}), "/risk_defaults/write").keyword
        == "enum"
    )
    assert error_at(refund_contract(risk_defaults=["write"]), "/risk_defaults").keyword == "type"


def limits(**fields: Any) -> dict[str, Any]:
    """The refund contract with its session_limits replaced."""
    return refund_contract(session_limits=fields)


@pytest.mark.parametrize("field", ["max_steps", "max_tool_calls", "max_cost_per_session"])
def test_a_negative_limit_is_a_compile_error(field: str) -> None:
    assert error_at(limits(**{field: -1}), f"/session_limits/{field}").keyword == "minimum"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_steps", 2.5),
        ("max_tool_calls", "3"),
        ("max_steps", True),
        ("max_cost_per_session", "1.0"),
    ],
)
def test_a_limit_of_the_wrong_type_is_a_compile_error(field: str, value: Any) -> None:
    assert error_at(limits(**{field: value}), f"/session_limits/{field}").keyword == "type"


def test_zero_limits_and_fractional_budgets_compile() -> None:
    compiled = compile_session(limits(max_steps=0, max_tool_calls=0, max_cost_per_session=0.25))
    assert (compiled.limits.max_steps, compiled.limits.max_cost_per_session) == (0, 0.25)
    assert compile_session(limits(max_cost_per_session=2)).limits.max_cost_per_session == 2.0


def test_an_unknown_limit_is_a_compile_error_not_silently_dropped() -> None:
    assert error_at(limits(max_step=3), "/session_limits/max_step").keyword == "unknown_limit"
    contract = limits(circuit_breaker={"consecutive_block": 5})
    assert (
        error_at(contract, "/session_limits/circuit_breaker/consecutive_block").keyword
        == "unknown_limit"
    )


def test_max_calls_per_tool_maps_any_tool_to_a_non_negative_integer() -> None:
    assert compile_session(
        limits(max_calls_per_tool={"anything": 0})
    ).limits.max_calls_per_tool == {"anything": 0}
    assert (
        error_at(
            limits(max_calls_per_tool={"x": -2}), "/session_limits/max_calls_per_tool/x"
        ).keyword
        == "minimum"
    )
    assert (
        error_at(limits(max_calls_per_tool=[3]), "/session_limits/max_calls_per_tool").keyword
        == "type"
    )


def test_loop_detection_needs_a_window_and_a_positive_threshold() -> None:
    assert (
        error_at(
            limits(loop_detection={"window": 3}), "/session_limits/loop_detection/threshold"
        ).keyword
        == "required"
    )
    contract = limits(loop_detection={"window": 3, "threshold": 0})
    assert error_at(contract, "/session_limits/loop_detection/threshold").keyword == "minimum"
    assert error_at(limits(loop_detection=3), "/session_limits/loop_detection").keyword == "type"


def test_circuit_breaker_thresholds_are_positive() -> None:
    contract = limits(circuit_breaker={"consecutive_errors": 0})
    assert (
        error_at(contract, "/session_limits/circuit_breaker/consecutive_errors").keyword
        == "minimum"
    )
    compiled = compile_session(limits(circuit_breaker={"consecutive_blocks": 2}))
    assert compiled.limits.breaker_consecutive_errors is None


def test_session_limits_must_be_an_object() -> None:
    assert error_at(refund_contract(session_limits=[1]), "/session_limits").keyword == "type"


# --- the contracts folder -------------------------------------------------------------


def session_file() -> dict[str, Any]:
    """session.yaml of the refund bot, as parsed."""
    session = refund_contract()
    del session["tools"]
    return session


def test_a_contracts_folder_compiles_into_the_same_compiled_session() -> None:
    built = compile_contracts_dir(session_file(), refund_tools())
    assert built == refund_contract()
    assert compile_session(built).compiled_hash == compiled_hash(refund_contract())


def test_a_contracts_folder_lists_tools_sorted_by_name() -> None:
    tools = dict(reversed(list(refund_tools().items())))
    assert list(compile_contracts_dir(session_file(), tools)["tools"]) == sorted(tools)


def test_a_contracts_folder_replaces_the_session_files_own_tools_and_keeps_other_keys() -> None:
    session = {**session_file(), "tools": ["lookup_order"], "description": "refunds"}
    built = compile_contracts_dir(session, {"lookup_order": {"side_effect": "read"}})
    assert built["tools"] == {"lookup_order": {"side_effect": "read"}}
    assert built["description"] == "refunds"


def test_a_contracts_folder_copies_its_documents() -> None:
    tools = refund_tools()
    built = compile_contracts_dir(session_file(), tools)
    tools["lookup_order"]["side_effect"] = "admin"
    assert built["tools"]["lookup_order"]["side_effect"] == "read"


def test_a_contracts_folder_errors_point_into_the_compiled_session() -> None:
    built = compile_contracts_dir(
        session_file(), {"wipe": {"side_effect": "admin", "evidence_class": "ack_only"}}
    )
    assert error_at(built, "/tools/wipe/evidence_class").keyword == "ack_only_high_risk"


def test_a_session_file_that_is_not_a_mapping_is_a_compile_error() -> None:
    with pytest.raises(CompileError):
        compile_contracts_dir(["phases"], {})  # type: ignore[arg-type]


# --- the JSONPath subset --------------------------------------------------------------

DATA = {"a": {"b": [10, {"c": None}]}, "n": 0}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", (True, DATA)),
        ("$.n", (True, 0)),
        ("$.a.b[0]", (True, 10)),
        ("$.a.b[1].c", (True, None)),
        ("$.a.b[2]", (False, None)),
        ("$.a.x", (False, None)),
        ("$.n.x", (False, None)),
        ("$.a[0]", (False, None)),
        ("$.a.b.c", (False, None)),
    ],
)
def test_resolve_path_answers_found_and_value(path: str, expected: tuple[bool, Any]) -> None:
    assert resolve_path(path, DATA) == expected


def test_resolve_path_refuses_paths_outside_the_subset() -> None:
    with pytest.raises(PathSyntaxError):
        resolve_path("$..a", DATA)
