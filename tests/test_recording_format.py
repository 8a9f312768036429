"""The recording file and its placeholders (PROTOCOL §9, schemas/recording.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vesanor_mock.errors import RecordingError
from vesanor_mock.recording.format import (
    Exchange,
    RecordingWriter,
    dumps,
    header,
    load_recording,
    parse_recording,
)
from vesanor_mock.recording.placeholders import Binder, Comparison, Scrubber, parse_mask


def exchange(seq: int, sid: str = "{{sess_1}}", **response: Any) -> dict[str, Any]:
    """A preflight exchange on `sid`."""
    return {
        "seq": seq,
        "endpoint": "preflight",
        "request": {
            "method": "POST",
            "path": f"/api/v1/replay/sessions/{sid}/preflight",
            "auth": "{{key_1}}",
            "body": {"fence_token": 1},
        },
        "response": {"status": 200, "headers": {}, "body": response or {"decision": "allow"}},
    }


def create(seq: int = 1) -> dict[str, Any]:
    """A create exchange that hands out {{sess_1}}."""
    return {
        "seq": seq,
        "endpoint": "create_session",
        "request": {"method": "POST", "path": "/api/v1/replay/sessions", "auth": "{{key_1}}"},
        "response": {
            "status": 201,
            "headers": {"x-request-id": "{{req_1}}"},
            "body": {"session": {"session_id": "{{sess_1}}"}},
        },
    }


def document(*items: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A whole recording."""
    base = {"format": "vesanor-mock-recording", "version": 1, "masks": [], "exchanges": list(items)}
    base.update(top)
    return base


def load_error(text: str) -> str:
    """The rendered load error of a recording's text."""
    with pytest.raises(RecordingError) as caught:
        parse_recording(text, "run.json")
    return caught.value.render()


# -- loading -----------------------------------------------------------------------------


def test_a_written_recording_loads_back_with_its_exchanges_and_lanes() -> None:
    loaded = parse_recording(dumps(document(create(), exchange(2))), "run.json")
    assert [e.seq for e in loaded.exchanges] == [1, 2]
    assert [e.lane for e in loaded.exchanges] == ["create", "session {{sess_1}}"]


def test_broken_json_is_refused_at_its_line_and_column() -> None:
    text = dumps(document(create()))
    broken = text.replace('"seq": 1,', '"seq": 1', 1)
    line = text.splitlines().index('      "seq": 1,') + 2
    assert load_error(broken) == f"run.json:{line}:7: invalid JSON: Expecting ',' delimiter"


def test_another_version_is_refused_by_name() -> None:
    text = dumps(document(create(), version=2))
    assert load_error(text) == (
        "run.json:3:14: unsupported recording version 2: this vesanor-mock reads version 1 "
        "(at /version)"
    )


def test_a_file_that_is_not_a_recording_says_so() -> None:
    assert load_error('{"scenario": "x"}') == (
        'run.json:1:1: not a vesanor-mock recording: expected "format": "vesanor-mock-recording"'
    )
    assert "not a vesanor-mock recording" in load_error("[1, 2]")


def test_a_schema_error_names_the_exchange_and_its_line() -> None:
    bad = exchange(2)
    bad["response"]["status"] = "200"
    text = dumps(document(create(), bad))
    line = text.splitlines().index('        "status": "200",') + 1
    assert load_error(text) == (
        f"run.json:{line}:19: exchange 2: expected integer, got string "
        "(at /exchanges/1/response/status)"
    )


def test_an_unknown_key_is_located_at_the_key() -> None:
    bad = create()
    bad["extra"] = True
    text = dumps(document(bad))
    line = text.splitlines().index('      "extra": true') + 1
    assert load_error(text).startswith(f"run.json:{line}:7: exchange 1: ")


def test_a_hand_edit_that_breaks_the_order_names_the_exchanges() -> None:
    text = dumps(document(exchange(2), create(1)))
    lines = text.splitlines()
    first_seq = lines.index('      "seq": 2,') + 1
    second_seq = lines.index('      "seq": 1,') + 1
    request = lines.index('      "request": {') + 1
    assert load_error(text).splitlines() == [
        f"run.json:{first_seq}:14: exchange 1: seq 2 is out of order: expected 1 (exchanges "
        "are written in the order they were answered) (at /exchanges/0/seq)",
        f"run.json:{request}:18: exchange 1: the request uses {{{{sess_1}}}} before any earlier "
        "answer handed it out (exchanges reordered or edited by hand?) (at /exchanges/0/request)",
        f"run.json:{second_seq}:14: exchange 2: seq 1 is out of order: expected 2 (exchanges "
        "are written in the order they were answered) (at /exchanges/1/seq)",
    ]


def test_an_exchange_whose_path_is_not_its_endpoint_is_refused() -> None:
    bad = exchange(2)
    bad["endpoint"] = "receipts"
    message = load_error(dumps(document(create(), bad)))
    assert "exchange 2: POST /api/v1/replay/sessions/{{sess_1}}/preflight is not the receipts" in (
        message
    )


def test_a_missing_or_unreadable_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read"):
        load_recording(tmp_path / "absent.json")
    with pytest.raises(RecordingError, match="not a regular file"):
        load_recording(tmp_path)


# -- writing -----------------------------------------------------------------------------


def test_the_writer_leaves_a_whole_document_after_every_exchange(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    writer = RecordingWriter(path, "https://runtime.example", ["/metadata/card"])
    assert path.read_text(encoding="utf-8") == dumps(
        header("https://runtime.example", ["/metadata/card"])
    )
    items = [create(), exchange(2), exchange(3)]
    for count, item in enumerate(items, 1):
        writer.append(Exchange(item["seq"], item["endpoint"], item["request"], item["response"]))
        expected = header("https://runtime.example", ["/metadata/card"])
        expected["exchanges"] = items[:count]
        assert path.read_text(encoding="utf-8") == dumps(expected)
    assert len(load_recording(path).exchanges) == 3


# -- placeholders ------------------------------------------------------------------------


def test_an_id_the_client_chose_stays_and_a_server_made_one_becomes_a_placeholder() -> None:
    scrub = Scrubber()
    scrub.request_body({"session_id": "sess_mine"})
    answer = scrub.response_body(
        {"session": {"session_id": "sess_mine", "lease": {"lease_id": "lease_9f"}}}
    )
    assert answer == {"session": {"session_id": "sess_mine", "lease": {"lease_id": "{{lease_1}}"}}}


def test_a_tool_named_like_an_id_prefix_is_left_alone() -> None:
    scrub = Scrubber()
    answer = scrub.response_body({"tool": "plan_trip", "visible_tools": ["plan_trip"]})
    assert answer == {"tool": "plan_trip", "visible_tools": ["plan_trip"]}


def test_timestamps_and_fence_tokens_are_numbered_by_distinct_value() -> None:
    scrub = Scrubber()
    answer = scrub.response_body(
        {
            "created_at": "2031-05-05T10:00:00.000Z",
            "updated_at": "2031-05-05T10:00:00.000Z",
            "expires_at": "2031-05-05T10:05:00.000Z",
            "lease": {"fence_token": 3},
            "details": {"current_fence_token": 3},
            "count": 3,
        }
    )
    assert answer == {
        "created_at": "{{time_1}}",
        "updated_at": "{{time_1}}",
        "expires_at": "{{time_2}}",
        "lease": {"fence_token": "{{fence_1}}"},
        "details": {"current_fence_token": "{{fence_1}}"},
        "count": 3,
    }
    assert scrub.request_body({"fence_token": 3, "other": 3}) == {
        "fence_token": "{{fence_1}}",
        "other": 3,
    }


def test_a_mask_pointer_with_a_wildcard_masks_every_match() -> None:
    scrub = Scrubber([parse_mask("/calls/*/arguments/card")])
    body = {"calls": [{"arguments": {"card": "1"}}, {"arguments": {"card": "2", "n": 1}}]}
    assert scrub.request_body(body) == {
        "calls": [
            {"arguments": {"card": "{{masked}}"}},
            {"arguments": {"card": "{{masked}}", "n": 1}},
        ]
    }
    with pytest.raises(ValueError, match="JSON Pointer"):
        parse_mask("calls/0")


def test_a_comparison_binds_placeholders_and_a_failed_one_binds_nothing() -> None:
    binder = Binder()
    failed = Comparison(binder)
    failed.compare({"id": "{{sess_1}}", "n": 1}, {"id": "sess_a", "n": 2})
    assert [d.to_dict() for d in failed.differences] == [
        {"path": "/n", "expected": 1, "received": 2}
    ]
    assert binder.forward == {}
    ok = Comparison(binder)
    ok.compare(
        {"id": "{{sess_1}}", "msg": "session {{sess_1}} is killed"},
        {"id": "sess_a", "msg": "session sess_a is killed"},
    )
    assert ok.differences == []
    ok.commit()
    assert binder.forward == {"{{sess_1}}": "sess_a"}
    other = Comparison(binder)
    other.compare({"id": "{{sess_1}}", "x": "{{sess_2}}"}, {"id": "sess_b", "x": "sess_a"})
    assert [d.path for d in other.differences] == ["/id", "/x"]


def test_a_missing_side_is_left_out_of_a_difference() -> None:
    comparison = Comparison(Binder())
    comparison.compare({"a": 1, "b": [1]}, {"c": 2, "b": [1, 2]})
    assert [d.to_dict() for d in comparison.differences] == [
        {"path": "/a", "expected": 1},
        {"path": "/b/1", "received": 2},
        {"path": "/c", "received": 2},
    ]


def test_the_recording_schema_accepts_what_the_writer_writes() -> None:
    from vesanor_mock.schemas import SchemaRegistry

    assert SchemaRegistry.load().validate("recording", json.loads(dumps(document(create())))) == []
