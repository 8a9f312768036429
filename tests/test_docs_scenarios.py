"""docs/scenarios.md cannot drift: its examples load (or fail) and every key is described."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vesanor_mock.cli import main
from vesanor_mock.config import Settings
from vesanor_mock.errors import ScenarioError
from vesanor_mock.harness import in_process
from vesanor_mock.http.app import MockService
from vesanor_mock.http.control import control_routes
from vesanor_mock.scenarios import load_scenario, load_scenario_text
from vesanor_mock.schemas import SchemaRegistry

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scenarios.md"
FROM_FIXTURE = re.compile(r"^# (fixtures/\S+)$")


def yaml_blocks() -> list[str]:
    """Every ```yaml block of the page."""
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_examples_from_the_fixtures_and_of_its_own() -> None:
    firsts = [block.splitlines()[0] for block in yaml_blocks()]
    assert sum(bool(FROM_FIXTURE.match(f)) for f in firsts) >= 8
    assert any(f.startswith("# broken:") for f in firsts)
    assert any(not f.startswith("#") for f in firsts)


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: b.splitlines()[0][:40])
def test_every_yaml_example_is_taken_verbatim_from_a_fixture_or_loads_as_written(
    block: str,
) -> None:
    first, _, rest = block.partition("\n")
    taken = FROM_FIXTURE.match(first)
    if taken:
        source = ROOT / taken.group(1)
        assert rest in source.read_text(encoding="utf-8"), f"not a slice of {source}"
        if source.parent.name == "fixtures":
            load_scenario(source)
    elif first.startswith("# broken:"):
        with pytest.raises(ScenarioError) as caught:
            load_scenario_text(block, "doc.yaml", ROOT / "fixtures")
        assert all(issue.line is not None for issue in caught.value.issues)
    else:
        load_scenario_text(block, "doc.yaml", ROOT / "fixtures")


def test_every_key_and_effect_of_the_schema_is_described(registry: SchemaRegistry) -> None:
    text = DOC.read_text(encoding="utf-8")
    schema = registry.schema("scenario")
    defs = schema["$defs"]
    keys = set(schema["properties"])
    for name in ("Clock", "Options", "Plan", "SessionSeed", "When", "Then", "AfterCommit"):
        keys |= set(defs[name]["properties"])
    keys |= set(defs["Expectation"]["properties"]) | set(defs["Respond"]["properties"])
    keys |= set(defs["EndpointOrAny"]["enum"])
    missing = sorted(k for k in keys if not re.search(rf"`[^`\n]*\b{re.escape(k)}\b", text))
    assert missing == []


def test_every_control_route_is_described(registry: SchemaRegistry) -> None:
    text = DOC.read_text(encoding="utf-8")
    service = MockService(Settings(port=0), registry)
    for route in control_routes(service):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert f"`{method} {route.path}`" in text, (method, route.path)


def command_examples() -> list[tuple[str, str, list[str]]]:
    """(the yaml block before it, the file name, the output) of each `$ vesanor-mock validate`."""
    text = DOC.read_text(encoding="utf-8")
    pattern = r"```yaml\n((?:(?!```).)*)```\s*```text\n\$ vesanor-mock validate (\S+)\n(.*?)```"
    found = re.findall(pattern, text, re.S)
    return [(block, name, output.splitlines()) for block, name, output in found]


@pytest.mark.parametrize("example", command_examples(), ids=lambda e: e[1])
def test_every_validate_example_prints_what_the_page_shows(
    example: tuple[str, str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    block, name, output = example
    (tmp_path / name).write_text(block, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = main(["validate", name])
    assert capsys.readouterr().out.splitlines() == output
    assert code == (1 if block.startswith("# broken:") else 0)


def test_there_are_validate_examples_for_a_warning_and_for_problems() -> None:
    names = [name for _, name, _ in command_examples()]
    assert names == ["typo.yaml", "broken.yaml"]


def test_the_near_miss_example_is_what_get_rules_answers(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    shown = json.loads(re.findall(r"```json\n(\{\"id\": \"freeze\".*?)```", text, re.S)[0])
    typo = next(block for block, name, _ in command_examples() if name == "typo.yaml")
    (tmp_path / "typo.yaml").write_text(typo, encoding="utf-8")
    handle = in_process(MockService(Settings(port=0, scenario=str(tmp_path / "typo.yaml"))))
    try:
        client, auth = handle.client, {"Authorization": "Bearer vsk_test_default"}
        body = {"agent": "refund-bot", "environment": "production"}
        sid = client.post("/api/v1/replay/sessions", json=body, headers=auth).json()["session"][
            "session_id"
        ]
        path = f"/api/v1/replay/sessions/{sid}"
        prep = client.post(path + "/preflight", json={"fence_token": 1}, headers=auth).json()
        call = {"id": "c1", "name": "issue_refund", "arguments": {"amount": 20}}
        proposal = {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": 1,
            "response": {"tool_calls": [call]},
        }
        client.post(path + "/proposals", json=proposal, headers=auth)
        assert client.get("/_mock/rules").json()["rules"] == [shown]
    finally:
        handle.mock.close()
