"""Bad input gets a clear error (status, code, pointer) and changes nothing.

Each case runs on a world holding a story (a session with a committed call, a workflow with
an offered handoff). Before and after the bad request the whole state (GET /_mock/state, less
the journal) must be equal, and the next id drawn must be the one a clean world draws: a
refused request neither changes state nor consumes an id.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from vesanor_mock.domain.journal import DEFAULT_MAX_BYTES, Draft, Journal
from vesanor_mock.http import exchange
from vesanor_mock.server import MockServer, ServerErrors

from .apiclient import Api, check_answer
from .mockctl import Control
from .test_api_cycle import call, commit, cycle, start
from .test_api_workflows import offer, root

AUTH = {"Authorization": "Bearer vsk_test_default"}
LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Story:
    """The ids of the world every bad request is thrown at."""

    sid: str
    fence: int
    wid: str
    hid: str


@dataclass(frozen=True)
class Bad:
    """One bad request and the error it must get."""

    name: str
    path: str  # formatted with the story's ids
    body: bytes | None = None
    status: int = 422
    code: str = "VALIDATION_FAILED"
    pointer: str | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)


def tell(api: Api) -> Story:
    """A session with one committed call; a workflow root that offered a handoff."""
    sid, fence = start(api)
    proposal = cycle(api, sid, fence, call("verify_customer"))
    commit(api, sid, fence, proposal["calls"][0]["pending_call_id"], {"verified": True})
    root_sid, root_fence, wid = root(api)
    hid = offer(api, root_sid, root_fence, "researcher")["handoff_id"]
    return Story(sid, fence, wid, hid)


def state(ctl: Control) -> dict[str, Any]:
    """Everything the world holds, less the journal (which records the refusal itself)."""
    snapshot = ctl.state()
    snapshot.pop("journal")
    return snapshot


@pytest.fixture
def ctl(server: MockServer, registry: Any) -> Control:
    """The control API of the test server."""
    return Control(server.url, registry)


@pytest.fixture
def story(api: Api) -> Story:
    """The story, told on a freshly reset world."""
    return tell(api)


@pytest.fixture(scope="module")
def next_label_id(server: MockServer, registry: Any) -> Iterator[str]:
    """The label id a clean world hands out right after the story."""
    server.service.reset()
    api = Api(server.url, registry)
    told = tell(api)
    yield api.label(told.sid, key="probe").json()["label"]["label_id"]


def deep(depth: int, inner: str = "") -> str:
    """`depth` nested JSON arrays around `inner`."""
    return "[" * depth + inner + "]" * depth


def body(**fields: Any) -> bytes:
    """A JSON body."""
    return json.dumps(fields).encode()


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes in chunks, so requests sends them chunked, with no Content-Length."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield b" " * piece
        sent += piece


LABELS = "/replay/sessions/{sid}/labels"
PREFLIGHT = "/replay/sessions/{sid}/preflight"
FILTER = "/replay/sessions/{sid}/tool-filter"

CASES = [
    Bad("malformed json", LABELS, b'{"key": ', 400, "MALFORMED_JSON"),
    Bad("a trailing comma", PREFLIGHT, b'{"fence_token": 1,}', 400, "MALFORMED_JSON"),
    Bad("NaN", LABELS, b'{"key": "k", "value": NaN}', 400, "MALFORMED_JSON"),
    Bad("100k nested arrays", LABELS, deep(100_000).encode(), 400, "MALFORMED_JSON"),
    Bad(
        "deep nesting in a free-form field",
        LABELS,
        ('{"key": "k", "metadata": {"a": ' + deep(5000) + "}}").encode(),
        400,
        "MALFORMED_JSON",
    ),
    Bad("a number out of a double's range", LABELS, b'{"key": "k", "value": 1e400}', 400,
        "MALFORMED_JSON"),
    Bad("an integer of 5000 digits", PREFLIGHT, b'{"fence_token": ' + b"9" * 5000 + b"}", 400,
        "MALFORMED_JSON"),
    Bad("an unpaired surrogate escape", LABELS, b'{"key": "k\\ud800"}', 400, "MALFORMED_JSON"),
    Bad("an unpaired surrogate in a key", LABELS,
        b'{"key": "k", "metadata": {"\\udc00": 1}}', 400, "MALFORMED_JSON"),
    Bad("non-UTF-8 bytes", LABELS, b'{"key": "\xff\xfe"}', 400, "MALFORMED_JSON"),
    Bad("a UTF-8 byte order mark", LABELS, b'\xef\xbb\xbf{"key": "k"}', 400, "MALFORMED_JSON"),
    Bad("Latin-1 text", LABELS, '{"key": "café"}'.encode("latin-1"), 400, "MALFORMED_JSON"),
    Bad("JSON that is not an object", LABELS, b'["key"]', pointer=""),
    Bad("a huge string within the limit", LABELS, body(key="x" * 900_000), pointer="/key"),
    Bad("a huge array within the limit", FILTER, body(deny=["t"] * 150_000), pointer="/deny"),
    Bad("a huge string over the limit", LABELS, body(key="x" * LIMIT), 413, "PAYLOAD_TOO_LARGE"),
    Bad("a huge array over the limit", FILTER, body(deny=["tool"] * 200_000), 413,
        "PAYLOAD_TOO_LARGE"),
    Bad("a string fence token", PREFLIGHT, body(fence_token="1"), pointer="/fence_token"),
    Bad("a boolean fence token", PREFLIGHT, body(fence_token=True), pointer="/fence_token"),
    Bad("a negative expected version", PREFLIGHT, body(fence_token=1, expected_state_version=-1),
        pointer="/expected_state_version"),
    Bad("a number for a label key", LABELS, body(key=5), pointer="/key"),
    Bad("an object for a label value", LABELS, body(key="k", value={"a": 1}), pointer="/value"),
    Bad("tool calls that are not a list", "/replay/sessions/{sid}/proposals",
        body(prepared_request_id="prep_1", fence_token=1, response={"tool_calls": {}}),
        pointer="/response/tool_calls"),
    Bad("an unknown outcome", "/replay/sessions/{sid}/receipts",
        body(pending_call_id="pc_1", fence_token=1, outcome="maybe"), pointer="/outcome"),
    Bad("a handoff outcome of the wrong type", "/replay/workflows/{wid}/handoffs/{hid}/complete",
        body(outcome=1), pointer="/outcome"),
    Bad("a text/plain body", LABELS, body(key="k"), 415, "UNSUPPORTED_MEDIA_TYPE",
        headers={"Content-Type": "text/plain"}),
    Bad("a form body", LABELS, b"key=k", 415, "UNSUPPORTED_MEDIA_TYPE",
        headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Bad("a multipart body", LABELS, b"--x--", 415, "UNSUPPORTED_MEDIA_TYPE",
        headers={"Content-Type": "multipart/form-data; boundary=x"}),
    Bad("a JSON look-alike media type", LABELS, body(key="k"), 415, "UNSUPPORTED_MEDIA_TYPE",
        headers={"Content-Type": "application/jsonx"}),
    Bad("an unknown query parameter on a write", LABELS + "?force=1", body(key="k"),
        pointer="/force"),
    Bad("an unknown query parameter on a read", "/replay/sessions/{sid}?expand=all",
        method="GET", pointer="/expand"),
    Bad("a bad include value", "/replay/sessions/{sid}?include=everything", method="GET",
        pointer="/include"),
    Bad("a plan lookup without an agent", "/governance/plan?environment=staging", method="GET",
        pointer="/agent"),
    Bad("a percent-encoded slash in a session id", "/replay/sessions/{sid}%2Fkill", b"{}", 404,
        "NOT_FOUND"),
    Bad("a unicode session id", "/replay/sessions/s%C3%A9ss_%F0%9F%92%A5/kill", b"{}", 404,
        "SESSION_NOT_FOUND"),
    Bad("a NUL in a session id", "/replay/sessions/a%00b/labels", body(key="k"), 404,
        "SESSION_NOT_FOUND"),
    Bad("a 4000-character session id", "/replay/sessions/" + "s" * 4000 + "/kill", b"{}", 404,
        "SESSION_NOT_FOUND"),
    Bad("a dot-dot segment", "/replay/sessions/../sessions", b"{}", 404, "NOT_FOUND"),
    Bad("a dot-dot session id", "/replay/sessions/../kill", b"{}", 404, "SESSION_NOT_FOUND"),
    Bad("an odd workflow id", "/replay/workflows/%2E%2E/kill", b"{}", 404, "WORKFLOW_NOT_FOUND"),
    Bad("an odd handoff id", "/replay/workflows/{wid}/handoffs/h%20%3Cx%3E/reclaim", b"{}", 404,
        "HANDOFF_NOT_FOUND"),
]  # fmt: skip


def send(server: MockServer, bad: Bad, story: Story) -> requests.Response:
    """Send the request byte for byte (http.client: no client normalises the path)."""
    target = "/api/v1" + bad.path.format(sid=story.sid, wid=story.wid, hid=story.hid)
    host = urlsplit(server.url)
    headers = {**AUTH, **bad.headers}
    if bad.body is not None:
        headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(bad.body))
    # generous: validating 150,000 array items takes seconds on a busy 2-core machine
    connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=60)
    try:
        connection.request(bad.method, target, body=bad.body, headers=headers)
        raw = connection.getresponse()
        answer = requests.Response()
        answer.status_code = raw.status
        answer.headers = requests.structures.CaseInsensitiveDict(raw.getheaders())
        answer._content = raw.read()
        return answer
    finally:
        connection.close()


@pytest.mark.parametrize("bad", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    server: MockServer, api: Api, ctl: Control, story: Story, next_label_id: str, bad: Bad
) -> None:
    before = state(ctl)
    answer = send(server, bad, story)
    check_answer(api.registry, "labels", answer)
    error = answer.json()["error"]
    assert (answer.status_code, error["code"]) == (bad.status, bad.code), error
    assert len(answer.content) < 64 * 1024, "the error echoes too much of the input"
    if bad.pointer is not None:
        assert error["details"]["errors"][0]["path"] == bad.pointer, error
    assert state(ctl) == before
    assert api.label(story.sid, key="probe").json()["label"]["label_id"] == next_label_id
    server.check()


@pytest.mark.parametrize(
    ("declared", "total"),
    [(False, LIMIT + 1), (False, 8 * LIMIT), (True, 8 * LIMIT)],
    ids=["chunked-just-over", "chunked-far-over", "declared-far-over"],
)
def test_a_body_over_the_limit_is_413_with_or_without_content_length(
    api: Api, ctl: Control, story: Story, declared: bool, total: int
) -> None:
    before = state(ctl)
    headers = {**AUTH, "Content-Type": "application/json"}
    data: Any = chunks(total)
    if declared:
        headers["Content-Length"] = str(total)
        data = b" " * total
    url = f"{api.base_url}/api/v1/replay/sessions/{story.sid}/labels"
    answer = requests.post(url, data=data, headers=headers, timeout=30)
    check_answer(api.registry, "labels", answer)
    assert answer.status_code == 413
    assert answer.json()["error"]["details"] == {"max_body_bytes": LIMIT}
    assert state(ctl) == before


def test_a_chunked_body_within_the_limit_is_read_whole(api: Api, story: Story) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"key": "chun'
        yield b'ked", "value": 1}'

    url = f"{api.base_url}/api/v1/replay/sessions/{story.sid}/labels"
    answer = requests.post(url, data=parts(), headers=AUTH, timeout=10)
    check_answer(api.registry, "labels", answer)
    assert answer.status_code == 201
    assert answer.json()["label"]["key"] == "chunked"


def test_a_huge_free_form_value_within_the_limit_is_kept_whole(api: Api, story: Story) -> None:
    text = "x" * 600_000
    answer = api.label(story.sid, key="big", metadata={"text": text, "list": list(range(20_000))})
    assert answer.status_code == 201
    assert answer.json()["label"]["metadata"]["text"] == text
    labels = api.get_session(story.sid).json()["session"]["labels"]
    assert labels[-1]["metadata"]["list"][-1] == 19_999


@pytest.mark.parametrize(
    "text",
    [
        "seed: !!python/object/apply:os.system ['true']\n",
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)),
        "scenario: [" * 50_000 + "]" * 50_000 + "\n",
        "description: " + "x" * (LIMIT + 10) + "\n",
    ],
    ids=["object-tag", "alias-bomb", "deep-nesting", "oversized"],
)
def test_a_hostile_scenario_posted_to_the_control_api_changes_nothing(
    api: Api, ctl: Control, story: Story, text: str
) -> None:
    before = state(ctl)
    answer = ctl.call(
        "POST", "/scenario", data=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert answer.status_code in (413, 422), answer.text
    assert len(answer.content) < 64 * 1024
    assert state(ctl) == before


def test_a_bug_outside_the_runtime_call_answers_the_envelope_and_fails_the_test(
    server: MockServer, api: Api, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug in the pipeline")

    monkeypatch.setattr(exchange.effects, "facts_for", broken)
    answer = api.label(story.sid, key="k")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "INTERNAL_ERROR"
    with pytest.raises(ServerErrors, match="a bug in the pipeline"):
        server.check()


def test_the_journal_drops_its_oldest_entries_past_its_byte_budget() -> None:
    journal = Journal(limit=10, max_bytes=100)
    for n in range(5):
        journal.record(Draft("t", f"req_{n}", "POST", "/p", size=40), 0.0)
    assert [e.request_id for e in journal.entries()] == ["req_3", "req_4"]
    assert journal.size == 80 and journal.total == 5
    journal.record(Draft("t", "req_big", "POST", "/p", size=1000), 0.0)
    assert [e.request_id for e in journal.entries()] == ["req_big"]


def test_refused_huge_bodies_do_not_pile_up_in_memory(
    server: MockServer, api: Api, story: Story
) -> None:
    huge = body(key="x" * 900_000)
    url = f"{api.base_url}/api/v1/replay/sessions/{story.sid}/labels"
    http = requests.Session()
    for _ in range(90):
        answer = http.post(url, data=huge, headers=AUTH, timeout=10)
        assert answer.status_code == 422
    journal = server.service.world.journal
    assert journal.size <= DEFAULT_MAX_BYTES
    assert len(journal) < 90
