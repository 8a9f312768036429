"""A contract written exactly as the public docs show one compiles; a typo in any part does not.

PROTOCOL.md §4.1 and DOMAIN.md: every key is checked against the published field lists, a
misspelled one is refused with a "did you mean" at its file, line and column, and the
bundled contracts folders (what users copy) follow the published format to the letter.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vesanor_mock.errors import ScenarioError
from vesanor_mock.scenarios import fixtures_dir, load_scenario

SESSION_YAML = """\
schema_version: "1.0"
agent: refund-bot
phases:
  - {name: start, initial: true}
  - {name: verified}
  - {name: refunded, terminal: true}
  - {name: abandoned, terminal: true}
transitions:
  start: [verified]
  verified: [refunded]
  refunded: []
session_limits:
  max_steps: 20
  max_tool_calls: 10
  max_cost_per_session: 5.0
  max_calls_per_tool: {lookup_order: 3}
  loop_detection: {window: 5, threshold: 3}
  circuit_breaker: {consecutive_blocks: 5, consecutive_errors: 3}
risk_defaults: {read: allow, write: allow, destructive: block, admin: block, financial: allow}
unmatched_policy: block
aggregates: []
envelopes: []
"""

LOOKUP_YAML = """\
tool: lookup_order
side_effect: read
evidence_class: local_transaction
commit_requirement: none
timeouts: {total_ms: 2000}
retries: {max_attempts: 3, retry_on: [timeout]}
rate_limits:
  on_429: {respect_retry_after: true, max_sleep_seconds: 5}
assertions:
  input_invariants: [{path: $.order_id, operator: min_length, value: 1}]
  output_invariants: []
golden_cases: []
allowed_errors: [order_not_found]
schema_derived: true
schema_derived_exclude: [$.note]
response_format_invariants: []
policy: {}
binds:
  - {name: order_id, from: $.arguments.order_id}
"""

REFUND_YAML = """\
tool: issue_refund
side_effect: financial
evidence_class: local_transaction
commit_requirement: acknowledged
gate: allow
timeouts: {total_ms: 10000}
retries: {max_attempts: 1, retry_on: []}
rate_limits:
  on_429: {respect_retry_after: true, max_sleep_seconds: 0}
assertions: {input_invariants: [], output_invariants: []}
golden_cases: []
allowed_errors: []
transitions:
  valid_in_phases: [verified]
  advances_to: refunded
preconditions:
  - requires_prior_tool: verify_customer
    with_output:
      - {path: $.verified, equals: true}
forbids_after: [verify_customer]
argument_value_invariants:
  - {id: refund-cap, path: $.amount, operator: lte, value: 500}
  - {path: $.order_id, operator: ref, value: order_id}
execution_constraints:
  arguments:
    - {path: $.amount, operator: gt, value: 0}
checkpoint: {reason: refunds need a human}
"""

VERIFY_YAML = """\
tool: verify_customer
side_effect: read
evidence_class: local_transaction
commit_requirement: none
transitions:
  advances_to: verified
"""

FILES = {
    "session.yaml": SESSION_YAML,
    "lookup_order.yaml": LOOKUP_YAML,
    "issue_refund.yaml": REFUND_YAML,
    "verify_customer.yaml": VERIFY_YAML,
}


def write_folder(root: Path, files: dict[str, str]) -> Path:
    """A contracts folder with these files, and a scenario next to it that uses it."""
    folder = root / "contracts"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    scenario = root / "scenario.yaml"
    scenario.write_text(
        "plans:\n  - agent: refund-bot\n    environment: production\n    contracts_dir: contracts\n"
    )
    return scenario


def test_a_contract_written_as_the_public_docs_show_one_compiles(tmp_path: Path) -> None:
    plan = load_scenario(write_folder(tmp_path, FILES)).spec.plans[0]
    assert plan.compiled is not None
    assert sorted(plan.compiled.tools) == ["issue_refund", "lookup_order", "verify_customer"]
    assert plan.compiled.unenforced == (
        "aggregates",
        "envelopes",
        "tools.issue_refund.timeouts",
        "tools.issue_refund.retries",
        "tools.issue_refund.rate_limits",
        "tools.issue_refund.assertions",
        "tools.issue_refund.golden_cases",
        "tools.issue_refund.allowed_errors",
        "tools.lookup_order.timeouts",
        "tools.lookup_order.retries",
        "tools.lookup_order.rate_limits",
        "tools.lookup_order.assertions",
        "tools.lookup_order.golden_cases",
        "tools.lookup_order.allowed_errors",
        "tools.lookup_order.response_format_invariants",
        "tools.lookup_order.policy",
        "tools.lookup_order.schema_derived",
        "tools.lookup_order.schema_derived_exclude",
    )


@pytest.mark.parametrize(
    ("file", "good", "bad", "guess"),
    [
        ("session.yaml", "session_limits:", "sessionLimits:", "session_limits"),
        ("session.yaml", "risk_defaults:", "risk_default:", "risk_defaults"),
        ("session.yaml", "  max_tool_calls:", "  max_tool_call:", "max_tool_calls"),
        ("session.yaml", "loop_detection: {window", "loop_detection: {windows", "window"),
        ("session.yaml", "{name: refunded, terminal", "{name: refunded, terminl", "terminal"),
        ("issue_refund.yaml", "forbids_after:", "forbid_after:", "forbids_after"),
        ("issue_refund.yaml", "preconditions:", "pre_conditions:", "preconditions"),
        ("issue_refund.yaml", "  advances_to:", "  advance_to:", "advances_to"),
        ("issue_refund.yaml", "checkpoint: {reason", "checkpoint: {reasons", "reason"),
        ("lookup_order.yaml", "timeouts: {total_ms", "timeouts: {totalMs", "total_ms"),
        ("lookup_order.yaml", "{max_attempts", "{max", "max_attempts"),
        ("lookup_order.yaml", "  on_429:", "  on429:", "on_429"),
        ("lookup_order.yaml", "  output_invariants:", "  output_invariant:", "output_invariants"),
        ("lookup_order.yaml", "{name: order_id, from", "{name: order_id, form", "from"),
        ("verify_customer.yaml", "commit_requirement:", "commit_requirment:", "commit_requirement"),
    ],
)
def test_a_misspelled_key_in_any_part_is_refused_with_a_did_you_mean_at_its_line(
    tmp_path: Path, file: str, good: str, bad: str, guess: str
) -> None:
    files = dict(FILES)
    assert good in files[file]
    files[file] = files[file].replace(good, bad, 1)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_folder(tmp_path, files))
    issues = [i for i in caught.value.issues if f"did you mean {guess!r}?" in i.message]
    assert len(issues) == 1, caught.value.issues
    issue = issues[0]
    assert issue.file is not None and issue.file.endswith(file)
    assert issue.line is not None
    line = files[file].splitlines()[issue.line - 1]
    assert bad.strip().split(":")[0].strip("{ ") in line


def test_each_bundled_contracts_folder_compiles_in_the_published_format(tmp_path: Path) -> None:
    folders = sorted(p for p in (fixtures_dir() / "contracts").iterdir() if p.is_dir())
    assert folders
    for folder in folders:
        scenario = tmp_path / f"{folder.name}.yaml"
        scenario.write_text(
            textwrap.dedent(
                f"""\
                plans:
                  - agent: {folder.name}
                    environment: production
                    contracts_dir: {folder}
                """
            )
        )
        plan = load_scenario(scenario).spec.plans[0]
        assert plan.compiled is not None, folder
        for name in plan.compiled.tools:
            for published in ("timeouts", "retries", "rate_limits", "assertions"):
                assert f"tools.{name}.{published}" in plan.compiled.unenforced, (name, published)
            for published in ("golden_cases", "allowed_errors"):
                assert f"tools.{name}.{published}" in plan.compiled.unenforced, (name, published)
