"""Rules, journal and expectations as plain Python: matching, counting, checks (PROTOCOL.md §5)."""

from __future__ import annotations

from typing import Any

import pytest

from vesanor_mock.domain.expect import build_expectation, expectation_problems, verify
from vesanor_mock.domain.journal import Draft, Journal
from vesanor_mock.domain.rulecheck import rule_problems
from vesanor_mock.domain.rules import Facts, RuleBook, build_rule


def rule(when: dict[str, Any], then: dict[str, Any] | None = None, position: int = 1) -> Any:
    """A rule from data, with a harmless effect by default."""
    return build_rule({"when": when, "then": then or {"delay_ms": 1}}, position)


def fired_on(book: RuleBook, facts: Facts, times: int) -> list[int]:
    """The 1-based request numbers on which any rule fired, over `times` requests."""
    return [n for n in range(1, times + 1) if book.fire(facts).fired]


PREFLIGHT = Facts("preflight", "default", "s1", "refund-bot")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({}, [1, 2, 3, 4, 5, 6]),
        ({"nth": 2}, [2]),
        ({"nth": [1, 3, 5]}, [1, 3, 5]),
        ({"after": 2}, [3, 4, 5, 6]),
        ({"times": 2}, [1, 2]),
        ({"after": 1, "times": 2}, [2, 3]),
        ({"nth": [2, 4, 6], "times": 2}, [2, 4]),
        ({"nth": [1, 4], "after": 2}, [4]),
    ],
)
def test_counting_by_nth_after_and_times_fires_on_the_right_requests(
    when: dict[str, Any], expected: list[int]
) -> None:
    book = RuleBook([rule({"endpoint": "preflight", **when})])
    assert fired_on(book, PREFLIGHT, 6) == expected


def test_nth_counts_only_the_requests_its_when_matches() -> None:
    book = RuleBook([rule({"endpoint": "preflight", "session_id": "s2", "nth": 2})])
    other = Facts("preflight", "default", "s1")
    mine = Facts("preflight", "default", "s2")
    results = [bool(book.fire(f).fired) for f in (other, mine, other, other, mine, mine)]
    assert results == [False, False, False, False, True, False]


@pytest.mark.parametrize(
    ("when", "facts", "matches"),
    [
        ({"endpoint": "any"}, Facts("labels", "t"), True),
        ({"endpoint": "proposals", "tool": "x"}, Facts("proposals", "t", tools=("y", "x")), True),
        ({"endpoint": "proposals", "tool": "x"}, Facts("proposals", "t", tools=("y",)), False),
        ({"endpoint": "receipts", "tool": "x"}, Facts("receipts", "t", tools=("x",)), True),
        ({"endpoint": "any", "tenant": "acme"}, Facts("kill", "other"), False),
        ({"endpoint": "any", "agent": "bot"}, Facts("kill", "t", "s", "bot"), True),
        ({"endpoint": "kill"}, Facts("recover", "t"), False),
    ],
)
def test_a_when_matches_on_endpoint_tenant_session_agent_and_tool(
    when: dict[str, Any], facts: Facts, matches: bool
) -> None:
    assert rule(when).when.matches(facts) is matches


def test_every_matching_rule_fires_in_file_order_and_the_first_answer_wins() -> None:
    book = RuleBook(
        [
            rule({"endpoint": "any"}, {"respond": {"status": 503}}, 1),
            rule({"endpoint": "preflight"}, {"drop_connection": True}, 2),
            rule({"endpoint": "preflight"}, {"advance_clock_s": 5}, 3),
        ]
    )
    verdict = book.fire(PREFLIGHT)
    assert verdict.ids == ["rule-1", "rule-2", "rule-3"]
    assert verdict.answer is not None and verdict.answer.answer == "respond"
    assert verdict.advance_clock_s == 5


def test_a_forced_block_applies_to_its_tool_only_with_the_default_code_and_rule_id() -> None:
    book = RuleBook([rule({"endpoint": "proposals", "tool": "issue_refund"}, {"block": {}})])
    verdict = book.fire(Facts("proposals", "t", tools=("issue_refund",)))
    assert verdict.forced_block("lookup_order") is None
    reason = verdict.forced_block("issue_refund")
    assert reason is not None
    assert (reason.code, reason.rule_id) == ("scenario_forced", "rule-1")


def test_rules_added_at_run_time_come_after_and_can_be_removed_with_fresh_counts() -> None:
    book = RuleBook([rule({"endpoint": "preflight"}, position=1)])
    book.add([rule({"endpoint": "preflight", "nth": 1}, position=2)])
    assert book.fire(PREFLIGHT).ids == ["rule-1", "rule-2"]
    assert book.clear_added() == 1
    book.add([rule({"endpoint": "preflight", "nth": 1}, position=2)])
    assert book.fire(PREFLIGHT).ids == ["rule-1", "rule-2"]
    assert [(r.id, s, m, f) for r, s, m, f in book.counts()] == [
        ("rule-1", "scenario", 2, 2),
        ("rule-2", "runtime", 1, 1),
    ]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"when": {"endpoint": "labels", "tool": "x"}, "then": {"delay_ms": 1}}, "/when/tool"),
        (
            {"when": {"endpoint": "governance_plan", "session_id": "s"}, "then": {"delay_ms": 1}},
            "/when/session_id",
        ),
        (
            {"when": {"endpoint": "get_workflow", "agent": "a"}, "then": {"delay_ms": 1}},
            "/when/agent",
        ),
        (
            {"when": {"endpoint": "any", "nth": [1, 2], "after": 2}, "then": {"delay_ms": 1}},
            "/when/nth",
        ),
        ({"when": {"endpoint": "preflight"}, "then": {"block": {}}}, "/then/block"),
        (
            {"when": {"endpoint": "create_session"}, "then": {"kill_session": {}}},
            "/then/kill_session",
        ),
        (
            {
                "when": {"endpoint": "any"},
                "then": {"respond": {"status": 503}, "malformed_body": True},
            },
            "/then/malformed_body",
        ),
        (
            {
                "when": {"endpoint": "any"},
                "then": {"drop_connection": True, "after_commit": {"delay_ms": 5}},
            },
            "/then/after_commit",
        ),
        (
            {"when": {"endpoint": "any", "tenant": "nobody"}, "then": {"delay_ms": 1}},
            "/when/tenant",
        ),
    ],
)
def test_a_rule_that_can_never_fire_or_contradicts_itself_is_a_problem(
    data: dict[str, Any], where: str
) -> None:
    assert where in [path for path, _ in rule_problems(data, ["default"])]


def test_the_same_filters_under_endpoint_any_are_fine() -> None:
    data = {"when": {"endpoint": "any", "tool": "x", "session_id": "s"}, "then": {"block": {}}}
    assert rule_problems(data, ["default"]) == []


# -- journal ------------------------------------------------------------------------------------


def draft(endpoint: str, status: int | None = 200, session_id: str | None = "s1") -> Draft:
    """A journal draft for a handled request."""
    return Draft(
        at="2026-01-01T00:00:00.000Z",
        request_id="req_000001",
        method="POST",
        path="/x",
        endpoint=endpoint,
        session_id=session_id,
        status=status,
        outcome="handled",
    )


def test_the_journal_keeps_the_newest_entries_up_to_its_limit_with_rising_seq() -> None:
    journal = Journal(limit=3)
    for _ in range(5):
        journal.record(draft("preflight"), 0.1)
    assert [e.seq for e in journal.entries()] == [3, 4, 5]
    assert (len(journal), journal.total, journal.limit) == (3, 5, 3)


def test_the_journal_filters_by_endpoint_session_status_and_since() -> None:
    journal = Journal()
    journal.record(draft("preflight", 200, "a"), 0)
    journal.record(draft("proposals", 409, "a"), 0)
    journal.record(draft("proposals", 200, "b"), 0)
    assert [e.seq for e in journal.entries(endpoint="proposals")] == [2, 3]
    assert [e.seq for e in journal.entries(session_id="a", status=409)] == [2]
    assert [e.seq for e in journal.entries(since=1)] == [2, 3]


def test_the_journal_stores_bodies_by_reference_without_copying() -> None:
    body = {"fence_token": 1}
    entry_draft = draft("preflight")
    entry_draft.request_body = body
    assert Journal().record(entry_draft, 0).request_body is body


# -- expectations -------------------------------------------------------------------------------


def test_verify_names_the_failed_expectation_and_what_was_seen() -> None:
    journal = Journal()
    for endpoint in ("create_session", "preflight", "proposals", "preflight"):
        journal.record(draft(endpoint), 0)
    expectations = [
        build_expectation({"endpoint": "preflight", "count": 2}),
        build_expectation({"endpoint": "proposals", "min": 2}),
        build_expectation({"sequence": ["create_session", "proposals", "receipts"]}),
    ]
    failures = verify(expectations, journal.entries())
    assert [f["index"] for f in failures] == [1, 2]
    assert failures[0]["message"] == "expect[1]: expected at least 2 proposals requests, saw 1"
    assert failures[0]["seen"]["count"] == 1
    assert failures[1]["seen"]["matched"] == 2
    assert failures[1]["seen"]["missing"] == "receipts"
    assert "create_session, preflight, proposals, preflight" in failures[1]["message"]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"endpoint": "preflight"}, ""),
        ({"endpoint": "preflight", "count": 1, "max": 2}, "/count"),
        ({"endpoint": "preflight", "min": 3, "max": 2}, "/max"),
        ({"endpoint": "labels", "tool": "x", "count": 1}, "/tool"),
        ({"sequence": ["preflight"], "count": 1}, "/count"),
        ({"count": 1}, ""),
    ],
)
def test_an_expectation_that_cannot_be_checked_is_a_problem(
    data: dict[str, Any], where: str
) -> None:
    assert where in [path for path, _ in expectation_problems(data)]


def test_a_raw_answer_may_not_set_the_headers_that_frame_the_message() -> None:
    data = {
        "when": {"endpoint": "any"},
        "then": {"respond": {"status": 200, "headers": {"Content-Length": "5", "X-Ok": "1"}}},
    }
    assert [path for path, _ in rule_problems(data)] == ["/then/respond/headers/Content-Length"]
