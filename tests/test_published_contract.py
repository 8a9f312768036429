"""A contract written exactly as the public docs show one compiles; a typo in any part does not.

PROTOCOL.md §4.1 and DOMAIN.md: every key is checked against the published field lists, a
misspelled one is refused with a "did you mean" at its file, line and column, and the
bundled contracts folders (what users copy) follow the published format to the letter.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from vesanor_mock.errors import ScenarioError
from vesanor_mock.scenarios import compile_workflow_folder, fixtures_dir, load_scenario

from .apiclient import Api

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

WORKFLOW_YAML = """\
schema_version: "1.0"
workflow: support
roles:
  - {name: triage, session_contract: ./triage}
  - {name: refunds, session_contract: .}
handoffs:
  - {from: triage, to: refunds}
"""

TRIAGE_SESSION_YAML = """\
schema_version: "1.0"
agent: triage-bot
phases:
  - {name: open, initial: true}
  - {name: routed, terminal: true}
transitions: {open: [routed]}
"""

TRIAGE_TOOL_YAML = """\
tool: route_ticket
side_effect: write
evidence_class: local_transaction
commit_requirement: none
transitions: {advances_to: routed}
"""

FILES = {
    "session.yaml": SESSION_YAML,
    "lookup_order.yaml": LOOKUP_YAML,
    "issue_refund.yaml": REFUND_YAML,
    "verify_customer.yaml": VERIFY_YAML,
    "workflow.yaml": WORKFLOW_YAML,
    "triage/session.yaml": TRIAGE_SESSION_YAML,
    "triage/route_ticket.yaml": TRIAGE_TOOL_YAML,
}


def write_folder(root: Path, files: dict[str, str]) -> Path:
    """A contracts folder with these files, and a scenario next to it that uses it."""
    folder = root / "contracts"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
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
        ("workflow.yaml", "handoffs:", "hand_offs:", "handoffs"),
        (
            "workflow.yaml",
            "{name: triage, session_contract",
            "{name: triage, sessionContract",
            "session_contract",
        ),
        ("workflow.yaml", "{from: triage", "{form: triage", "from"),
        ("triage/route_ticket.yaml", "side_effect:", "side_efect:", "side_effect"),
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


def test_workflow_yaml_compiles_with_each_role_contract_path_resolved_next_to_it(
    tmp_path: Path,
) -> None:
    write_folder(tmp_path, FILES)
    compiled = compile_workflow_folder(tmp_path / "contracts")
    assert [role["name"] for role in compiled["roles"]] == ["triage", "refunds"]
    triage, refunds = (role["session_contract"] for role in compiled["roles"])
    assert triage["agent"] == "triage-bot" and list(triage["tools"]) == ["route_ticket"]
    assert refunds["agent"] == "refund-bot"
    assert compiled["handoffs"] == [{"from": "triage", "to": "refunds"}]


def test_a_role_contract_path_without_a_contracts_folder_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    files = dict(FILES, **{"workflow.yaml": WORKFLOW_YAML.replace("./triage", "./nowhere")})
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_folder(tmp_path, files))
    [issue] = caught.value.issues
    assert issue.file is not None and issue.file.endswith("workflow.yaml")
    assert issue.line == 4 and "nowhere" in issue.message


def test_a_role_contract_that_does_not_compile_is_refused_in_its_own_file(tmp_path: Path) -> None:
    broken = TRIAGE_SESSION_YAML.replace("{name: routed, terminal: true}", "{name: routed}")
    files = dict(FILES, **{"triage/session.yaml": broken})
    with pytest.raises(ScenarioError) as caught:
        compile_workflow_folder(write_folder(tmp_path, files).parent / "contracts")
    assert any(
        i.file is not None and i.file.endswith("triage/session.yaml") for i in caught.value.issues
    ), caught.value.issues


def test_the_compiled_workflow_of_a_folder_creates_a_workflow_over_the_api(
    api: Api, tmp_path: Path
) -> None:
    write_folder(tmp_path, FILES)
    compiled = compile_workflow_folder(tmp_path / "contracts")
    response = api.create_session(
        agent="triage-bot",
        workflow={"type": "root", "role": "triage", "compiled_workflow": compiled},
    )
    assert response.status_code == 201, response.text
    session = response.json()["session"]
    assert session["phase"] == {"current": "open", "legal_next": ["routed"]}


def test_the_workflow_yaml_example_of_docs_workflows_md_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "workflows.md").read_text()
    [shown] = [b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "workflow.yaml" in b]
    [code] = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "workflow_folder" in b]
    write_folder(tmp_path, dict(FILES, **{"workflow.yaml": shown}))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/workflows.md", "exec"), namespace)
    body = namespace["body"]
    assert isinstance(body, dict)
    assert body["workflow"]["compiled_workflow"]["workflow"] == "support"
