"""Loading scenarios: what a good file builds, and broken files named by file, line and column."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from vesanor_mock.domain.world import World, WorldSpec
from vesanor_mock.errors import ScenarioError, ScenarioIssue
from vesanor_mock.scenarios import MAX_BYTES, load_scenario, load_scenario_text
from vesanor_mock.schemas import ENDPOINTS, SchemaRegistry

from .contracts_examples import refund_contract, refund_tools


def broken(text: str, base_dir: Path | None = None) -> list[ScenarioIssue]:
    """The issues of a scenario that must not load."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(textwrap.dedent(text), "broken.yaml", base_dir)
    assert caught.value.issues, "a ScenarioError names at least one issue"
    return caught.value.issues


def where(issues: list[ScenarioIssue]) -> list[tuple[int | None, int | None]]:
    """(line, column) of each issue."""
    return [(issue.line, issue.column) for issue in issues]


GOOD = """\
scenario: good
description: a bit of everything
seed: 7
clock: {start: "2026-03-01T09:00:00Z", mode: frozen}
options:
  validation: off
  prepared_ttl_s: 60
  lease_ttl_s: 30
  journal_limit: 50
tenants:
  - name: acme
    api_keys: [vsk_acme]
plans:
  - agent: refund-bot
    environment: production
    compiled_session: &refund CONTRACT
sessions:
  - session_id: sess-seeded
    agent: refund-bot
    environment: production
    state_version: 4
    phase: verified
  - session_id: sess-dead
    agent: other
    status: killed
rules:
  - when: {endpoint: preflight, nth: 2}
    then: {stale_state_version: true}
  - id: freeze
    when: {endpoint: proposals, tool: issue_refund}
    then: {block: {code: refunds_frozen, detail: frozen for audit}}
expect:
  - {endpoint: preflight, count: 3}
  - {sequence: [create_session, preflight]}
""".replace("CONTRACT", json.dumps(refund_contract()))


def test_a_good_scenario_builds_the_whole_spec() -> None:
    spec = load_scenario_text(GOOD, "good.yaml").spec
    assert (spec.name, spec.seed, spec.clock_start) == ("good", 7, "2026-03-01T09:00:00Z")
    assert (spec.validation, spec.journal_limit) == ("off", 50)
    assert (spec.options.prepared_ttl_s, spec.options.lease_ttl_s) == (60, 30)
    assert spec.api_keys == {"vsk_acme": "acme"}
    assert spec.plans[0].compiled is not None
    assert [r.id for r in spec.rules] == ["rule-1", "freeze"]
    assert (
        spec.rules[1].then.block is not None and spec.rules[1].then.block.code == "refunds_frozen"
    )
    assert len(spec.expect) == 2


def test_a_seeded_session_has_the_create_fields_its_state_and_the_plan_contract() -> None:
    world = World(load_scenario_text(GOOD, "good.yaml").spec)
    seeded = world.runtime.sessions[("acme", "sess-seeded")]
    assert (seeded.state_version, seeded.phase, seeded.enforcement) == (4, "verified", "protective")
    assert seeded.governance_source == "plan"
    dead = world.runtime.sessions[("acme", "sess-dead")]
    assert (dead.status, dead.killed and dead.killed.actor) == ("killed", "scenario")


def test_what_a_scenario_leaves_out_comes_from_the_defaults() -> None:
    defaults = WorldSpec(seed=9, validation="lenient")
    spec = load_scenario_text("scenario: tiny\n", "tiny.yaml", defaults=defaults).spec
    assert (spec.seed, spec.validation, spec.api_keys) == (9, "lenient", defaults.api_keys)


def test_yaml_1_1_booleans_and_dates_stay_strings() -> None:
    spec = load_scenario_text(
        "options: {validation: off}\nclock: {start: 2026-02-01T00:00:00Z}\n", "x.yaml"
    ).spec
    assert (spec.validation, spec.clock_start) == ("off", "2026-02-01T00:00:00Z")


def test_a_json_scenario_loads_like_yaml_with_json_numbers() -> None:
    text = '{"scenario": "j", "seed": 1e3, "options": {"journal_limit": 20}}'
    spec = load_scenario_text(text, "j.json").spec
    assert (spec.name, spec.seed, spec.journal_limit) == ("j", 1000, 20)
    assert isinstance(spec.seed, int)
    issues = broken('{"rules": [{"when": {"endpoint": "any"}, "then": {"delay_ms": 0.5}}]}')
    assert issues[0].path == "/rules/0/then/delay_ms" and issues[0].line == 1


def test_the_scenario_schema_lists_exactly_the_protocol_endpoints(
    registry: SchemaRegistry,
) -> None:
    defs = registry.schema("scenario")["$defs"]
    assert defs["Endpoint"]["enum"] == list(ENDPOINTS)
    assert defs["EndpointOrAny"]["enum"] == [*ENDPOINTS, "any"]


# -- broken files ---------------------------------------------------------------------------


def test_bad_yaml_names_the_line_and_column() -> None:
    issues = broken("scenario: x\nrules:\n  - when: {endpoint: preflight\n")
    assert issues[0].line == 4 and "invalid YAML" in issues[0].message


def test_an_unknown_key_points_at_the_key() -> None:
    issues = broken(
        """\
        scenario: x
        rules:
          - when: {endpoint: preflight}
            then:
              stale_state_version: true
              explode: true
        """
    )
    assert where(issues) == [(6, 7)]
    assert "unknown key 'explode'" in issues[0].message
    assert issues[0].path == "/rules/0/then/explode"


def test_a_wrong_type_points_at_the_value_and_says_what_was_expected() -> None:
    issues = broken("scenario: x\nseed: lots\n")
    assert where(issues) == [(2, 7)]
    assert issues[0].message == "expected integer, got string"


def test_an_unknown_endpoint_lists_the_known_ones() -> None:
    issues = broken("rules:\n  - when: {endpoint: preflite}\n    then: {delay_ms: 5}\n")
    assert where(issues) == [(2, 22)]
    assert "preflight" in issues[0].message and issues[0].path == "/rules/0/when/endpoint"


def test_an_unknown_effect_is_refused_at_its_key() -> None:
    issues = broken("rules:\n  - when: {endpoint: any}\n    then: {explode: true}\n")
    assert issues[0].line == 3 and issues[0].path == "/rules/0/then/explode"


def test_a_rule_that_can_never_fire_is_refused_at_the_filter() -> None:
    issues = broken(
        """\
        rules:
          - when:
              endpoint: labels
              tool: issue_refund
            then: {delay_ms: 5}
          - when: {endpoint: any, nth: 2, after: 3}
            then: {delay_ms: 5}
        """
    )
    assert where(issues) == [(4, 13), (6, 32)]
    assert "never matches" in issues[0].message and "never fires" in issues[1].message


def test_times_zero_and_a_non_positive_nth_are_refused() -> None:
    issues = broken(
        "rules:\n  - when: {endpoint: any, times: 0, nth: [0, 2]}\n    then: {delay_ms: 1}\n"
    )
    paths = [i.path for i in issues]
    assert any(p.startswith("/rules/0/when/times") for p in paths)
    assert any(p.startswith("/rules/0/when/nth") for p in paths)
    assert all(i.line == 2 for i in issues)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    issues = broken("seed: -1\nclock: {mode: fast}\nrules: nope\n")
    assert [i.line for i in issues] == [1, 2, 3]


def test_an_inline_plan_that_does_not_compile_names_the_line_of_the_offending_value() -> None:
    contract = refund_contract()
    contract["tools"]["issue_refund"]["evidence_class"] = "ack_only"
    text = yaml.safe_dump({"plans": [{"agent": "refund-bot", "compiled_session": contract}]})
    lines = text.splitlines()
    issues = broken(text)
    assert len(issues) == 1
    assert issues[0].path.startswith("/plans/0/compiled_session/tools/issue_refund")
    assert issues[0].line is not None
    assert "ack_only" in lines[issues[0].line - 1] or "evidence_class" in lines[issues[0].line - 1]
    assert "does not compile" in issues[0].message


def write_contracts(folder: Path, tools: dict[str, Any], session: dict[str, Any]) -> None:
    """A contracts folder: session.yaml and one <tool>.yaml per tool."""
    folder.mkdir(parents=True)
    (folder / "session.yaml").write_text(yaml.safe_dump(session, sort_keys=False))
    for name, doc in tools.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def session_doc(**changes: Any) -> dict[str, Any]:
    """The refund bot's session.yaml."""
    doc = {k: v for k, v in refund_contract().items() if k != "tools"}
    doc.update(changes)
    return doc


def test_a_contracts_dir_is_read_relative_to_the_scenario_file(tmp_path: Path) -> None:
    write_contracts(tmp_path / "contracts" / "refund", refund_tools(), session_doc())
    scenario = tmp_path / "s.yaml"
    scenario.write_text("plans:\n  - agent: refund-bot\n    contracts_dir: contracts/refund\n")
    plan = load_scenario(scenario).spec.plans[0]
    assert plan.compiled is not None
    assert sorted(plan.compiled.tools) == sorted(refund_tools())


def test_a_tool_file_that_does_not_compile_is_named_with_its_own_line(tmp_path: Path) -> None:
    tools = refund_tools()
    tools["issue_refund"]["transitions"]["valid_in_phases"] = ["nowhere"]
    write_contracts(tmp_path / "c", tools, session_doc())
    issues = broken("plans:\n  - agent: refund-bot\n    contracts_dir: c\n", tmp_path)
    assert len(issues) == 1
    assert issues[0].file is not None and issues[0].file.endswith("issue_refund.yaml")
    text = (tmp_path / "c" / "issue_refund.yaml").read_text().splitlines()
    assert issues[0].line is not None and "nowhere" in text[issues[0].line - 1]
    assert issues[0].render("broken.yaml").startswith(issues[0].file + ":")


def test_a_session_file_that_does_not_compile_names_session_yaml(tmp_path: Path) -> None:
    phases = [{"name": "start", "initial": True}, {"name": "verified"}, {"name": "refunded"}]
    write_contracts(tmp_path / "c", refund_tools(), session_doc(phases=phases))
    issues = broken("plans:\n  - agent: refund-bot\n    contracts_dir: c\n", tmp_path)
    assert issues[0].file is not None and issues[0].file.endswith("session.yaml")
    assert issues[0].line is not None


def test_a_broken_yaml_file_in_a_contracts_dir_is_named(tmp_path: Path) -> None:
    write_contracts(tmp_path / "c", refund_tools(), session_doc())
    (tmp_path / "c" / "lookup_order.yaml").write_text("tool: lookup_order\nside_effect: [read\n")
    issues = broken("plans:\n  - agent: refund-bot\n    contracts_dir: c\n", tmp_path)
    assert issues[0].file is not None and issues[0].file.endswith("lookup_order.yaml")


def test_a_missing_contracts_dir_points_at_the_scenario_line(tmp_path: Path) -> None:
    issues = broken("plans:\n  - agent: refund-bot\n    contracts_dir: nowhere\n", tmp_path)
    assert where(issues) == [(3, 20)] and "session.yaml" in issues[0].message


@pytest.mark.parametrize(
    "text",
    [
        "seed: !!python/object/apply:os.system ['true']\n",
        "seed: !!python/name:os.system\n",
        "x: !!binary aGVsbG8=\n",
        "scenario: !custom hello\n",
        "x: !!set {a, b}\n",
    ],
)
def test_yaml_tags_that_construct_objects_are_refused(text: str) -> None:
    issues = broken(text)
    assert "is not allowed" in issues[0].message and issues[0].line == 1


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    issues = broken("\n".join(lines) + "\n")
    assert "alias bomb" in issues[0].message


def test_a_self_referencing_alias_is_refused() -> None:
    assert "deeper" in broken("a: &a [*a]\n")[0].message


def test_a_file_over_one_mib_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("description: " + "x" * MAX_BYTES + "\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(big)
    assert "refused unread" in str(caught.value)


def test_a_duplicate_key_names_both_lines() -> None:
    issues = broken("seed: 1\nscenario: x\nseed: 2\n")
    assert where(issues) == [(3, 1)] and "first at line 1" in issues[0].message


def test_a_merge_key_is_refused() -> None:
    issues = broken("rules:\n  - &r {when: {endpoint: any}, then: {delay_ms: 1}}\n  - <<: *r\n")
    assert (3, 5) in where(issues)
    assert "merge keys (<<) are not supported" in [i.message for i in issues]


def test_multiple_documents_are_refused() -> None:
    assert broken("seed: 1\n---\nseed: 2\n")[0].line == 2


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (
            "tenants:\n  - {name: a, api_keys: [k]}\n  - {name: b, api_keys: [k]}\n",
            "/tenants/1/api_keys/0",
        ),
        ("plans:\n  - {agent: a, tenant: ghost, status: draft}\n", "/plans/0/tenant"),
        ("plans:\n  - {agent: a}\n", "/plans/0"),
        ("sessions:\n  - {agent: a, phase: verified}\n", "/sessions/0/phase"),
        (
            "sessions:\n  - {agent: a, session_id: s}\n  - {agent: a, session_id: s}\n",
            "/sessions/1/session_id",
        ),
        (
            "rules:\n  - {id: r, when: {endpoint: any}, then: {delay_ms: 1}}\n"
            "  - {id: r, when: {endpoint: any}, then: {delay_ms: 1}}\n",
            "/rules/1/id",
        ),
        ("expect:\n  - {endpoint: preflight}\n", "/expect/0"),
        ("clock: {start: '2026-13-45T00:00:00Z'}\n", "/clock/start"),
    ],
)
def test_semantic_problems_point_at_their_place(text: str, path: str) -> None:
    assert path in [issue.path for issue in broken(text)]


def test_an_error_renders_file_line_column_message_and_pointer() -> None:
    issues = broken("scenario: x\nseed: lots\n")
    assert issues[0].render("broken.yaml") == (
        "broken.yaml:2:7: expected integer, got string (at /seed)"
    )


def test_json_indented_with_tabs_loads_and_its_errors_keep_their_lines() -> None:
    doc = {"scenario": "tabs", "rules": [{"when": {"endpoint": "any"}, "then": {"delay_ms": 5}}]}
    assert load_scenario_text(json.dumps(doc, indent="\t"), "t.json").name == "tabs"
    doc["seed"] = "lots"
    text = json.dumps(doc, indent="\t")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"seed"' in row)
    issues = broken(text)
    assert (issues[0].path, issues[0].line, issues[0].column) == ("/seed", line, 10)
