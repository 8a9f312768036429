"""Hardening of the policy's `regex` operator (issue 10, PROTOCOL.md §8): a hostile pattern
cannot stall the server, and a deep or huge one is a COMPILE_ERROR, never a crash."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from vesanor_mock.domain.contracts import compile_session
from vesanor_mock.domain.operators import holds
from vesanor_mock.domain.regex import MAX_PATTERN_CHARS, RegexRefused, compile_regex

from .apiclient import Api, error_code
from .contracts_examples import refund_contract
from .test_api_cycle import call, cycle, start

EVIL = "^(a+)+$"


def regex_contract(pattern: str) -> dict[str, Any]:
    """The refund bot, with a regex invariant on lookup_order's `x`."""
    contract = refund_contract()
    contract["tools"]["lookup_order"]["argument_value_invariants"] = [
        {"path": "$.x", "operator": "regex", "value": pattern, "id": "x-shape"}
    ]
    return contract


def test_a_catastrophic_pattern_is_judged_at_once_and_other_clients_are_answered(
    api: Api,
) -> None:
    sid, fence = start(api, regex_contract(EVIL))
    hostile = "a" * 5000 + "!"  # `re` would need longer than the age of the universe
    answers: dict[str, Any] = {}

    def judge() -> None:
        started = time.perf_counter()
        answers["proposal"] = cycle(api, sid, fence, call("lookup_order", {"x": hostile}))
        answers["proposal_s"] = time.perf_counter() - started

    judging = threading.Thread(target=judge)
    judging.start()
    started = time.perf_counter()
    health = requests.get(api.base_url + "/_mock/health", timeout=10)
    health_s = time.perf_counter() - started
    judging.join(30)
    assert health.status_code == 200 and health_s < 2.0
    assert answers["proposal_s"] < 5.0
    assert answers["proposal"]["decision"] == "block"
    reasons = answers["proposal"]["calls"][0]["reasons"]
    assert any(r.get("rule_id") == "x-shape" for r in reasons), reasons


def test_search_semantics_are_kept_for_accepted_patterns(api: Api) -> None:
    sid, fence = start(api, regex_contract("ord_[0-9]+"))
    allowed = cycle(api, sid, fence, call("lookup_order", {"x": "see ord_42 please"}))
    assert allowed["decision"] == "allow"


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a)\\1", "backreferences"),
        ("(?=a)b", "lookaround"),
        ("(?<!a)b", "lookaround"),
        ("a++", "possessive"),
        ("a{1001}", "at most 1000"),
        ("(" * 1000 + "a" + ")" * 1000, f"more than the {MAX_PATTERN_CHARS}"),
        ("(?:a{1000}){1000}", "repetition"),
    ],
)
def test_a_pattern_the_engine_cannot_run_linearly_is_a_compile_error(
    api: Api, pattern: str, why: str
) -> None:
    contract = regex_contract(pattern)
    response = api.call(
        "create_session",
        "POST",
        "/replay/sessions",
        {"agent": "refund-bot", "contract": {"compiled_session": contract}},
    )
    assert response.status_code == 422
    assert error_code(response) == "COMPILE_ERROR"
    [error] = response.json()["error"]["details"]["errors"]
    assert error["path"].endswith("/argument_value_invariants/0/value")
    assert why in error["message"]


def test_a_thousand_nested_groups_within_the_length_limit_compile_without_recursion() -> None:
    pattern = "(" * 400 + "a" + ")" * 400
    assert compile_regex(pattern).search("xa") is not None


def test_a_huge_compiled_program_is_refused_not_built() -> None:
    with pytest.raises(RegexRefused, match="too large"):
        compile_regex("[^a]{1000}" * 90)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("^ord_", "ord_1", True),
        ("[0-9]", "abc1def", True),
        ("^[0-9]+$", "12a", False),
        ("(?i)refund", "REFUND now", True),
        ("colou?r", "the color red", True),
        ("^(a+)+$", "a" * 100_000 + "!", False),
    ],
)
def test_regex_is_a_search_anywhere_like_re_search(pattern: str, text: str, expected: bool) -> None:
    assert holds("regex", True, text, pattern, compile_regex(pattern)) is expected


def test_a_posted_scenario_with_a_deep_pattern_is_refused_and_changes_nothing(
    api: Api,
) -> None:
    before = requests.get(api.base_url + "/_mock/state", timeout=5).json()
    pattern = "(" * 1000 + "a" + ")" * 1000
    scenario = {
        "scenario": "deep",
        "plans": [
            {
                "tenant": "default",
                "agent": "refund-bot",
                "environment": "development",
                "status": "approved",
                "compiled_session": regex_contract(pattern),
            }
        ],
    }
    response = requests.post(api.base_url + "/_mock/scenario", json=scenario, timeout=10)
    assert response.status_code == 422
    assert "more than the" in response.text
    assert requests.get(api.base_url + "/_mock/state", timeout=5).json() == before


def phase_chain(n: int) -> dict[str, Any]:
    """A contract whose n phases form one chain, a tool advancing each step."""
    phases: list[dict[str, Any]] = [{"name": f"p{i}"} for i in range(n)]
    phases[0]["initial"], phases[-1]["terminal"] = True, True
    transitions = {f"p{i}": [f"p{i + 1}"] for i in range(n - 1)} | {f"p{n - 1}": []}
    tools = {
        f"t{i}": {
            "tool": f"t{i}",
            "side_effect": "read",
            "evidence_class": "local_transaction",
            "commit_requirement": "none",
            "transitions": {"valid_in_phases": [f"p{i}"], "advances_to": f"p{i + 1}"},
        }
        for i in range(n - 1)
    }
    return {
        "schema_version": "1.0",
        "agent": "a",
        "phases": phases,
        "transitions": transitions,
        "tools": tools,
    }


def test_a_long_phase_chain_compiles_in_linear_time() -> None:
    timings = []
    for n in (500, 5000):
        contract = phase_chain(n)
        started = time.perf_counter()
        compiled = compile_session(contract)
        timings.append(time.perf_counter() - started)
        assert len(compiled.phases) == n
    assert timings[1] / timings[0] < 30  # 10x the phases: ~10x linear, ~100x quadratic
