"""The client checks over HTTP (PROTOCOL.md §7.1): each rule, driven by a misbehaving client,
gives exactly its finding; the correct behaviour next to it gives none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from vesanor_mock import cli
from vesanor_mock.client import ExpectationFailed, MockClient
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api
from .contracts_examples import refund_contract
from .mockctl import Control
from .test_api_cycle import call


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Iterator[Control]:
    """The control API of the test's (freshly reset) server."""
    yield Control(server.url, registry)


def rid(response: requests.Response) -> str:
    """The request id of an answer."""
    return response.headers["X-Request-Id"]


def found(ctl: Control, **filters: str) -> list[dict[str, Any]]:
    """GET /_mock/findings."""
    return list(ctl.call("GET", "/findings", params=filters).json()["findings"])


def shape(findings: list[dict[str, Any]]) -> list[tuple[str, str | None, list[str]]]:
    """(rule, session, request ids) of each finding."""
    return [(f["rule"], f["session_id"], f["request_ids"]) for f in findings]


def start(api: Api, sid: str = "s-1", **fields: Any) -> tuple[requests.Response, int]:
    """A session with the refund contract; its creation answer and fence token."""
    fields.setdefault("contract", {"compiled_session": refund_contract()})
    response = api.create_session(session_id=sid, agent="refund-bot", **fields)
    assert response.status_code == 201, response.text
    return response, int(response.json()["lease"]["fence_token"])


def preflight(api: Api, sid: str, fence: int, **body: Any) -> requests.Response:
    """A preflight answered 200."""
    response = api.preflight(sid, fence_token=fence, **body)
    assert response.status_code == 200, response.text
    return response


def propose(
    api: Api, sid: str, fence: int, prepared: str, *calls: dict[str, Any]
) -> requests.Response:
    """A proposal for a prepared request (any answer)."""
    return api.propose(
        sid, prepared_request_id=prepared, fence_token=fence, response={"tool_calls": list(calls)}
    )


def receipt(api: Api, sid: str, fence: int, pending: str, **extra: Any) -> requests.Response:
    """A successful receipt (any answer)."""
    body: dict[str, Any] = {"pending_call_id": pending, "fence_token": fence, "outcome": "success"}
    body.update(extra)
    return api.receipt(sid, **body)


def verify_step(api: Api, sid: str, fence: int) -> str:
    """Preflight, propose verify_customer, receipt it: answer the proposal's request id."""
    prep = preflight(api, sid, fence).json()["prepared_request_id"]
    proposal = propose(api, sid, fence, prep, call("verify_customer"))
    pending = proposal.json()["calls"][0]["pending_call_id"]
    assert receipt(api, sid, fence, pending, output={"verified": True}).status_code == 200
    return rid(proposal)


# -- invalid-request -------------------------------------------------------------------------


def test_a_body_the_schema_refuses_is_an_invalid_request_naming_its_pointer(
    api: Api, ctl: Control
) -> None:
    start(api)
    bad = api.preflight("s-1", fence_token="one")
    assert bad.status_code == 422
    findings = found(ctl)
    assert shape(findings) == [("invalid-request", "s-1", [rid(bad)])]
    assert "/fence_token" in findings[0]["message"]
    assert findings[0]["severity"] == "error" and findings[0]["protocol"].startswith("§")


def test_malformed_json_and_a_missing_query_parameter_are_invalid_requests(
    api: Api, ctl: Control
) -> None:
    start(api)
    broken = api.call("preflight", "POST", "/replay/sessions/s-1/preflight", data=b"{", headers={})
    no_agent = api.plan()
    assert (broken.status_code, no_agent.status_code) == (400, 422)
    assert shape(found(ctl)) == [
        ("invalid-request", "s-1", [rid(broken)]),
        ("invalid-request", None, [rid(no_agent)]),
    ]


def test_valid_requests_and_protocol_refusals_are_not_invalid_requests(
    api: Api, ctl: Control
) -> None:
    start(api)
    assert api.preflight("s-1", fence_token=9).status_code == 409
    assert api.get_session("nope").status_code == 404
    assert found(ctl) == []


# -- write-after-kill ------------------------------------------------------------------------


def test_after_its_own_kill_answer_the_next_write_is_already_write_after_kill(
    api: Api, ctl: Control
) -> None:
    start(api)
    kill = api.kill("s-1")
    write = api.preflight("s-1", fence_token=1)
    later = api.preflight("s-1", fence_token=1)
    assert (write.status_code, later.status_code) == (409, 409)
    assert shape(found(ctl)) == [("write-after-kill", "s-1", [rid(kill), rid(write)])]


def test_the_first_write_that_meets_a_kill_is_clean_the_second_is_write_after_kill(
    api: Api, ctl: Control
) -> None:
    start(api)
    ctl.call(
        "POST",
        "/rules",
        {"rules": [{"when": {"endpoint": "preflight", "nth": 1}, "then": {"kill_session": {}}}]},
    )
    first = api.preflight("s-1", fence_token=1)
    assert first.status_code == 409
    assert found(ctl) == []
    receipt_after = receipt(api, "s-1", 1, "pc_x")
    assert shape(found(ctl)) == [("write-after-kill", "s-1", [rid(first), rid(receipt_after)])]


def test_labels_get_and_kill_after_a_kill_are_not_writes(api: Api, ctl: Control) -> None:
    start(api)
    api.kill("s-1")
    api.label("s-1", key="after")
    api.get_session("s-1")
    api.kill("s-1")
    assert found(ctl) == []


# -- write-after-compromise ------------------------------------------------------------------


def test_a_preflight_after_its_own_bypass_report_is_write_after_compromise(
    api: Api, ctl: Control
) -> None:
    start(api)
    report = api.report_bypass("s-1")
    assert report.status_code == 200
    again = api.preflight("s-1", fence_token=1)
    assert again.status_code == 409
    assert shape(found(ctl)) == [("write-after-compromise", "s-1", [rid(report), rid(again)])]


def test_receipts_and_labels_after_a_bypass_report_are_fine(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    pending = propose(api, "s-1", 1, prep, call("verify_customer")).json()["calls"][0]
    api.report_bypass("s-1")
    assert receipt(api, "s-1", 1, pending["pending_call_id"]).status_code == 200
    api.label("s-1", key="note")
    assert found(ctl) == []


# -- stale-retry -----------------------------------------------------------------------------


def test_resending_a_stale_expected_version_without_a_reload_is_stale_retry(
    api: Api, ctl: Control
) -> None:
    start(api)
    verify_step(api, "s-1", 1)  # state_version is now 1
    stale = api.preflight("s-1", fence_token=1, expected_state_version=0)
    assert stale.status_code == 409
    again = api.preflight("s-1", fence_token=1, expected_state_version=0)
    assert shape(found(ctl)) == [("stale-retry", "s-1", [rid(stale), rid(again)])]


def test_a_reload_after_a_stale_version_then_the_current_version_is_clean(
    api: Api, ctl: Control
) -> None:
    start(api)
    verify_step(api, "s-1", 1)
    assert api.preflight("s-1", fence_token=1, expected_state_version=0).status_code == 409
    version = api.get_session("s-1").json()["session"]["state_version"]
    preflight(api, "s-1", 1, expected_state_version=version)
    assert found(ctl) == []


def test_a_stale_prepared_request_proposed_again_is_stale_retry(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    api.tool_filter("s-1", deny=["delete_account"])  # the state moves on
    stale = propose(api, "s-1", 1, prep, call("verify_customer"))
    assert stale.status_code == 409
    again = propose(api, "s-1", 1, prep, call("lookup_order"))
    assert shape(found(ctl)) == [("stale-retry", "s-1", [rid(stale), rid(again)])]


# -- fence-retry -----------------------------------------------------------------------------


def test_the_same_refused_fence_again_is_fence_retry_and_a_recover_makes_it_clean(
    api: Api, ctl: Control
) -> None:
    start(api)
    api.recover("s-1", holder_id="worker-b")  # another worker took the lease: fence 2
    refused = api.preflight("s-1", fence_token=1)
    assert refused.status_code == 409
    again = api.preflight("s-1", fence_token=1, idempotency_key="k")
    assert shape(found(ctl)) == [("fence-retry", "s-1", [rid(refused), rid(again)])]
    ctl.call("POST", "/reset")
    start(api)
    api.recover("s-1", holder_id="worker-b")
    assert api.preflight("s-1", fence_token=1).status_code == 409
    fence = api.recover("s-1").json()["lease"]["fence_token"]
    preflight(api, "s-1", fence)
    assert found(ctl) == []


# -- prepared-reuse --------------------------------------------------------------------------


def test_a_second_proposal_for_a_consumed_prepared_request_is_prepared_reuse(
    api: Api, ctl: Control
) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    first = propose(api, "s-1", 1, prep, call("lookup_order"))
    pending = first.json()["calls"][0]["pending_call_id"]
    assert receipt(api, "s-1", 1, pending).status_code == 200
    reused = propose(api, "s-1", 1, prep, call("lookup_order", call_id="c2"))
    assert reused.status_code == 409
    assert shape(found(ctl)) == [("prepared-reuse", "s-1", [rid(first), rid(reused)])]


def test_a_new_preflight_for_each_proposal_is_clean(api: Api, ctl: Control) -> None:
    start(api)
    verify_step(api, "s-1", 1)
    verify_step(api, "s-1", 1)
    assert found(ctl) == []


# -- unresolved-before-preflight -------------------------------------------------------------


def test_a_preflight_before_receipting_allowed_calls_is_unresolved_before_preflight(
    api: Api, ctl: Control
) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    proposal = propose(api, "s-1", 1, prep, call("verify_customer"))
    early = api.preflight("s-1", fence_token=1)
    assert early.status_code == 409
    assert shape(found(ctl, severity="error")) == [
        ("unresolved-before-preflight", "s-1", [rid(proposal), rid(early)])
    ]


def test_a_preflight_after_every_receipt_is_clean(api: Api, ctl: Control) -> None:
    start(api)
    verify_step(api, "s-1", 1)
    preflight(api, "s-1", 1)
    assert found(ctl) == []


# -- receipt-conflict ------------------------------------------------------------------------


def test_a_second_different_receipt_is_a_receipt_conflict_the_same_one_is_clean(
    api: Api, ctl: Control
) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    pending = propose(api, "s-1", 1, prep, call("lookup_order")).json()["calls"][0]
    pc = pending["pending_call_id"]
    first = receipt(api, "s-1", 1, pc)
    assert receipt(api, "s-1", 1, pc).status_code == 200  # the same again: fine
    assert found(ctl) == []
    other = receipt(api, "s-1", 1, pc, output={"changed": True})
    assert other.status_code == 409
    assert shape(found(ctl)) == [("receipt-conflict", "s-1", [rid(first), rid(other)])]


# -- retry-without-reconcile -----------------------------------------------------------------


def drop_after_commit(ctl: Control, endpoint: str) -> None:
    """The next request to `endpoint` is handled, then its connection dropped."""
    rule = {
        "when": {"endpoint": endpoint, "nth": 1},
        "then": {"after_commit": {"drop_connection": True}},
    }
    ctl.call("POST", "/rules", {"rules": [rule]})


def lost(api: Api, send: Any) -> None:
    """Send a request whose answer the mock drops."""
    with pytest.raises(requests.ConnectionError):
        send()


def test_a_new_preflight_after_a_lost_receipt_answer_is_retry_without_reconcile(
    api: Api, ctl: Control
) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    pc = propose(api, "s-1", 1, prep, call("lookup_order")).json()["calls"][0]["pending_call_id"]
    drop_after_commit(ctl, "receipts")
    lost(api, lambda: receipt(api, "s-1", 1, pc))
    moved_on = api.preflight("s-1", fence_token=1)
    dropped = ctl.journal(endpoint="receipts")[0]
    assert dropped["outcome"] == "dropped" and dropped["committed"] is True
    assert shape(found(ctl)) == [
        ("retry-without-reconcile", "s-1", [dropped["request_id"], rid(moved_on)])
    ]


def test_the_same_receipt_repeated_after_a_lost_answer_is_clean(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    pc = propose(api, "s-1", 1, prep, call("lookup_order")).json()["calls"][0]["pending_call_id"]
    drop_after_commit(ctl, "receipts")
    lost(api, lambda: receipt(api, "s-1", 1, pc))
    assert receipt(api, "s-1", 1, pc).status_code == 200
    preflight(api, "s-1", 1)
    assert found(ctl) == []


def test_a_lost_proposal_answer_needs_a_read_with_pending_calls(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    drop_after_commit(ctl, "proposals")
    lost(api, lambda: propose(api, "s-1", 1, prep, call("lookup_order")))
    api.get_session("s-1")  # without ?include=pending: the client still cannot know
    pending = api.get_session("s-1", include="pending").json()["session"]["pending_calls"]
    assert receipt(api, "s-1", 1, pending[0]["pending_call_id"]).status_code == 200
    assert found(ctl) == []


# -- call-not-offered ------------------------------------------------------------------------


def test_proposing_a_tool_the_preflight_narrowed_away_is_call_not_offered(
    api: Api, ctl: Control
) -> None:
    start(api)
    prep = preflight(api, "s-1", 1, request={"tools": ["verify_customer", "issue_refund"]})
    assert [n["tool"] for n in prep.json()["narrowed"]] == ["issue_refund"]
    proposal = propose(
        api, "s-1", 1, prep.json()["prepared_request_id"], call("issue_refund", {"amount": 1})
    )
    assert proposal.status_code == 200
    findings = found(ctl)
    assert shape(findings) == [("call-not-offered", "s-1", [rid(prep), rid(proposal)])]
    assert findings[0]["severity"] == "warning"


def test_proposing_only_visible_tools_is_clean(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1, request={"tools": ["verify_customer", "issue_refund"]})
    proposal = propose(api, "s-1", 1, prep.json()["prepared_request_id"], call("verify_customer"))
    pc = proposal.json()["calls"][0]["pending_call_id"]
    assert receipt(api, "s-1", 1, pc, output={"verified": True}).status_code == 200
    assert found(ctl) == []


# -- receipt-missing -------------------------------------------------------------------------


def test_an_allowed_call_left_without_a_receipt_is_receipt_missing_until_receipted(
    api: Api, ctl: Control
) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    proposal = propose(api, "s-1", 1, prep, call("lookup_order"))
    assert shape(found(ctl)) == [("receipt-missing", "s-1", [rid(proposal)])]
    pc = proposal.json()["calls"][0]["pending_call_id"]
    assert receipt(api, "s-1", 1, pc).status_code == 200
    assert found(ctl) == []


def test_a_killed_session_needs_no_receipts(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    propose(api, "s-1", 1, prep, call("lookup_order"))
    api.kill("s-1")
    assert found(ctl) == []


# -- retry-storm -----------------------------------------------------------------------------


def test_the_same_failing_request_four_times_is_one_retry_storm(api: Api, ctl: Control) -> None:
    ids = [rid(api.get_session("nope")) for _ in range(5)]
    assert shape(found(ctl)) == [("retry-storm", "nope", [*ids[:3], ids[4]])]
    assert "5 times" in found(ctl)[0]["message"]


def test_three_identical_failures_are_not_a_storm(api: Api, ctl: Control) -> None:
    for _ in range(3):
        api.get_session("nope")
    api.get_session("other")
    assert found(ctl) == []


# -- the endpoint ----------------------------------------------------------------------------


def test_findings_filter_by_session_and_severity(api: Api, ctl: Control) -> None:
    start(api)
    start(api, "s-2")
    prep = preflight(api, "s-2", 1).json()["prepared_request_id"]
    propose(api, "s-2", 1, prep, call("lookup_order"))  # receipt-missing: a warning
    api.preflight("s-1", fence_token="x")  # invalid-request: an error
    assert [f["rule"] for f in found(ctl)] == ["receipt-missing", "invalid-request"]
    assert [f["rule"] for f in found(ctl, session_id="s-1")] == ["invalid-request"]
    assert [f["rule"] for f in found(ctl, severity="warning")] == ["receipt-missing"]
    answer = ctl.call("GET", "/findings").json()
    assert answer["checked_requests"] == 5


@pytest.mark.parametrize(
    ("query", "pointer"), [({"severity": "fatal"}, "/severity"), ({"rule": "x"}, "/rule")]
)
def test_a_bad_findings_filter_is_a_422_with_a_pointer(
    api: Api, ctl: Control, query: dict[str, str], pointer: str
) -> None:
    response = ctl.call("GET", "/findings", params=query)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == pointer


def test_a_reset_starts_a_new_set_of_findings(api: Api, ctl: Control) -> None:
    start(api)
    api.preflight("s-1", fence_token="x")
    assert found(ctl)
    ctl.call("POST", "/reset")
    assert ctl.call("GET", "/findings").json() == {"findings": [], "checked_requests": 0}


def test_verify_is_not_ok_with_an_error_finding_unless_findings_are_off(
    api: Api, ctl: Control
) -> None:
    start(api)
    api.preflight("s-1", fence_token="x")
    answer = ctl.call("POST", "/verify").json()
    assert answer["ok"] is False and answer["failures"] == []
    assert [f["rule"] for f in answer["findings"]] == ["invalid-request"]
    off = ctl.call("POST", "/verify", {"findings": "off"}).json()
    assert off["ok"] is True and "findings" not in off


def test_verify_stays_ok_with_only_warnings(api: Api, ctl: Control) -> None:
    start(api)
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    propose(api, "s-1", 1, prep, call("lookup_order"))
    answer = ctl.call("POST", "/verify", {"expect": []}).json()
    assert answer["ok"] is True and [f["rule"] for f in answer["findings"]] == ["receipt-missing"]


def test_findings_outlive_a_bounded_journal(api: Api, ctl: Control) -> None:
    ctl.load({"scenario": "tiny-journal", "options": {"journal_limit": 3}})
    start(api)
    bad = api.preflight("s-1", fence_token="x")
    for _ in range(3):
        api.get_session("s-1")
    assert rid(bad) not in [e["request_id"] for e in ctl.journal()]
    assert shape(found(ctl)) == [("invalid-request", "s-1", [rid(bad)])]


# -- the control client and the CLI ----------------------------------------------------------


def test_the_client_reads_findings_and_asserts_there_are_none(api: Api, server: MockServer) -> None:
    control = MockClient(server.url)
    start(api)
    control.assert_no_findings()
    prep = preflight(api, "s-1", 1).json()["prepared_request_id"]
    propose(api, "s-1", 1, prep, call("lookup_order"))
    control.assert_no_findings()  # a warning only
    with pytest.raises(ExpectationFailed, match="receipt-missing"):
        control.assert_no_findings(severity="warning")
    kill = api.kill("s-1")
    write = api.preflight("s-1", fence_token=1)
    assert [f["rule"] for f in control.findings(severity="error")] == ["write-after-kill"]
    with pytest.raises(ExpectationFailed) as failed:
        control.assert_no_findings()
    report = str(failed.value)
    assert "error write-after-kill (§3.9)" in report and "  hint: " in report
    assert f"  {rid(kill)} #4 POST /api/v1/replay/sessions/s-1/kill -> 200" in report
    assert f"  {rid(write)} #5 POST /api/v1/replay/sessions/s-1/preflight -> 409" in report


def test_cli_verify_fails_on_an_error_finding_unless_told_not_to_check(
    api: Api, server: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    start(api)
    allowed = ["verify", "--allow-empty", "--url", server.url]  # the scenario has no expect
    assert cli.main(allowed, env={}) == cli.EXIT_OK
    api.kill("s-1")
    api.preflight("s-1", fence_token=1)
    assert cli.main(allowed, env={}) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "error write-after-kill (§3.9)" in out and "0 expectation(s) checked, 0 failed" in out
    assert cli.main([*allowed, "--no-findings"], env={}) == cli.EXIT_OK


def test_cli_coverage_prints_writes_and_gates(
    api: Api, server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    MockClient(server.url).clear_coverage()
    start(api)
    page = tmp_path / "cov.html"
    url = ["--url", server.url]
    assert cli.main(["coverage", *url, "--html", str(page)], env={}) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("vesanor-mock coverage: 1/") and "most important missing" in out
    assert "✓ seen ×1" in page.read_text(encoding="utf-8")
    assert cli.main(["coverage", *url, "--min", "50"], env={}) == cli.EXIT_FAILED
    assert "below the minimum of 50%" in capsys.readouterr().err
    assert cli.main(["coverage", *url, "--json"], env={}) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["covered"] == 1


def test_cli_check_computes_findings_and_coverage_from_a_saved_journal(
    api: Api, ctl: Control, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start(api)
    kill = api.kill("s-1")
    write = api.preflight("s-1", fence_token=1)
    saved = tmp_path / "journal.json"
    saved.write_text(json.dumps({"entries": ctl.journal()}), encoding="utf-8")
    assert cli.main(["check", str(saved)], env={}) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "error write-after-kill (§3.9)" in out and "vesanor-mock coverage: " in out
    assert cli.main(["check", str(saved), "--json"], env={}) == cli.EXIT_FAILED
    answer = json.loads(capsys.readouterr().out)
    assert [(f["rule"], f["request_ids"]) for f in answer["findings"]] == [
        ("write-after-kill", [rid(kill), rid(write)])
    ]
    assert answer["findings"] == found(ctl)
    lines = tmp_path / "journal.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in ctl.journal()), encoding="utf-8")
    assert cli.main(["check", str(lines)], env={}) == cli.EXIT_FAILED


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("scenario: x-export\nseed: 1\n", "scenario export (vesanor-mock export)"),
        ('{"scenario": {}, "source": null}', "scenario export (vesanor-mock export)"),
        ('{"entries": [{"seq": "one"}]}', "not a journal entry at /entries/0"),
        ("[1, 2", "not JSON"),
        ('{"nothing": 1}', "expected a journal"),
    ],
)
def test_cli_check_refuses_a_file_that_is_not_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, said: str
) -> None:
    path = tmp_path / "run.json"
    path.write_text(content, encoding="utf-8")
    assert cli.main(["check", str(path)], env={}) == cli.EXIT_USAGE
    assert said in capsys.readouterr().err
