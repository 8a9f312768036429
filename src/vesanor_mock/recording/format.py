"""The recording file (PROTOCOL §9, schemas/recording.schema.json): write it, load it.

A recording is pretty JSON (two-space indent, keys in a fixed order, UTF-8), so two
recordings of the same run are byte-identical and a change reads well in a diff. The
writer appends one exchange at a time and the file is a complete document after every
append, so a proxy stopped at any moment leaves a recording that loads.

Loading checks everything before anything is used, and names the file, line and column
and the exchange of each problem: JSON syntax, the format and its version, the schema,
the order of `seq`, the path of each endpoint, and that every placeholder a request uses
was handed out by an earlier answer (a hand edit that reorders exchanges breaks that).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RecordingError, ScenarioIssue
from ..schemas import SchemaRegistry
from .jsonmarks import JsonMarks
from .placeholders import kind_of, placeholders_in

FORMAT = "vesanor-mock-recording"
VERSION = 1
SCHEMA = "recording"
MAX_BYTES = 256 * 1024 * 1024
"""A recording is read up to this size and no further (PROTOCOL §8)."""
API_PREFIX = "/api/v1"
_TAIL = b"\n  ]\n}\n"
_SESSION_PATH = re.compile(r"/api/v1/replay/sessions/([^/]+)")
_WORKFLOW_PATH = re.compile(r"/api/v1/replay/workflows/([^/]+)")

ENDPOINT_PATHS: dict[str, tuple[str, re.Pattern[str]]] = {
    name: (method, re.compile("/api/v1" + re.sub(r"\{[a-z]+\}", "[^/]+", path)))
    for name, method, path in (
        ("create_session", "POST", "/replay/sessions"),
        ("get_session", "GET", "/replay/sessions/{sid}"),
        ("preflight", "POST", "/replay/sessions/{sid}/preflight"),
        ("proposals", "POST", "/replay/sessions/{sid}/proposals"),
        ("receipts", "POST", "/replay/sessions/{sid}/receipts"),
        ("labels", "POST", "/replay/sessions/{sid}/labels"),
        ("tool_filter", "POST", "/replay/sessions/{sid}/tool-filter"),
        ("report_bypass", "POST", "/replay/sessions/{sid}/report-bypass"),
        ("kill", "POST", "/replay/sessions/{sid}/kill"),
        ("recover", "POST", "/replay/sessions/{sid}/recover"),
        ("get_workflow", "GET", "/replay/workflows/{wid}"),
        ("offer_handoff", "POST", "/replay/sessions/{sid}/handoffs"),
        ("complete_handoff", "POST", "/replay/workflows/{wid}/handoffs/{hid}/complete"),
        ("reclaim_handoff", "POST", "/replay/workflows/{wid}/handoffs/{hid}/reclaim"),
        ("kill_workflow", "POST", "/replay/workflows/{wid}/kill"),
        ("governance_plan", "GET", "/governance/plan"),
    )
}
"""Each endpoint's method and path (the same table as http/api.py, as patterns)."""


def lane_of(path: str) -> str:
    """The lane of a request: its session, its workflow, `create`, or its path.

    Replay answers each lane in recorded order; lanes are independent of each other.
    """
    found = _SESSION_PATH.match(path)
    if found:
        return f"session {found.group(1)}"
    found = _WORKFLOW_PATH.match(path)
    if found:
        return f"workflow {found.group(1)}"
    if path == "/api/v1/replay/sessions":
        return "create"
    return path


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer."""

    seq: int
    endpoint: str
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def lane(self) -> str:
        """See `lane_of`."""
        return lane_of(str(self.request["path"]))

    def to_dict(self) -> dict[str, Any]:
        """The exchange as written in the file."""
        return {
            "seq": self.seq,
            "endpoint": self.endpoint,
            "request": self.request,
            "response": self.response,
        }


@dataclass(frozen=True)
class Recording:
    """A loaded recording."""

    source: str
    upstream: str | None
    masks: tuple[str, ...]
    exchanges: tuple[Exchange, ...]


def header(upstream: str | None, masks: Sequence[str]) -> dict[str, Any]:
    """The document before its exchanges."""
    head: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if upstream is not None:
        head["upstream"] = upstream
    head["masks"] = list(masks)
    head["exchanges"] = []
    return head


def dumps(document: Any) -> str:
    """The file's text for a document: pretty JSON, UTF-8, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


class RecordingWriter:
    """Writes a recording one exchange at a time; the file is a whole document after each.

    The text is always exactly `dumps(document)`: the new exchange goes where the closing
    `]` of `exchanges` was, and the tail is written again after it.
    """

    def __init__(self, path: str | Path, upstream: str | None, masks: Sequence[str]) -> None:
        self.path = Path(path)
        text = dumps(header(upstream, masks)).encode("utf-8")
        self.path.write_bytes(text)
        self._end = len(text) - len(b"[]\n}\n")  # where the exchanges list opens
        self._count = 0

    @property
    def count(self) -> int:
        """Exchanges written so far."""
        return self._count

    def append(self, exchange: Exchange) -> None:
        """Write one more exchange."""
        item = json.dumps(exchange.to_dict(), indent=2, ensure_ascii=False)
        block = "\n".join("    " + line for line in item.split("\n")).encode("utf-8")
        lead = b"[\n" if self._count == 0 else b",\n"
        with self.path.open("r+b") as out:
            out.seek(self._end)
            out.write(lead + block + _TAIL)
            out.truncate()
        self._end += len(lead) + len(block)
        self._count += 1


def load_recording(path: str | Path, registry: SchemaRegistry | None = None) -> Recording:
    """Read and check a recording file; RecordingError names every problem."""
    name = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise RecordingError(name, [ScenarioIssue("not a regular file: refused unread")])
        if info.st_size > MAX_BYTES:
            issue = ScenarioIssue(f"the file is larger than {MAX_BYTES} bytes: refused unread")
            raise RecordingError(name, [issue])
        with open(path, "rb") as source:
            data = source.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RecordingError(name, [ScenarioIssue(f"cannot read: {exc.strerror}")]) from None
    return parse_recording(data, name, registry)


def parse_recording(
    data: bytes | str, filename: str = "<recording>", registry: SchemaRegistry | None = None
) -> Recording:
    """Check a recording's text; RecordingError names every problem (file:line:col)."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            issue = ScenarioIssue(f"the file is larger than {MAX_BYTES} bytes: refused unread")
            raise RecordingError(filename, [issue])
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            issue = ScenarioIssue(f"not UTF-8 (invalid byte at offset {exc.start})")
            raise RecordingError(filename, [issue]) from None
    else:
        text = data
    document = _parse_json(text, filename)
    marks = JsonMarks(text)
    _check_format(document, marks, filename)
    registry = registry or SchemaRegistry.load()
    issues = [
        _issue(marks, error.path, error.message, error.keyword == "additionalProperties")
        for error in registry.validate(SCHEMA, document)
    ]
    if issues:
        raise RecordingError(filename, _sorted(issues))
    exchanges = tuple(
        Exchange(item["seq"], item["endpoint"], item["request"], item["response"])
        for item in document["exchanges"]
    )
    issues = _check_exchanges(exchanges, marks)
    if issues:
        raise RecordingError(filename, _sorted(issues))
    return Recording(
        filename, document.get("upstream"), tuple(document.get("masks", ())), exchanges
    )


def _parse_json(text: str, filename: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        issue = ScenarioIssue(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno)
        raise RecordingError(filename, [issue]) from None
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "nested too deeply to read"
        raise RecordingError(filename, [ScenarioIssue(f"invalid JSON: {message}")]) from None


def _check_format(document: Any, marks: JsonMarks, filename: str) -> None:
    """Say plainly when a file is not a recording, or one of another version."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        message = f'not a vesanor-mock recording: expected "format": "{FORMAT}"'
        where = "/format" if isinstance(document, dict) and "format" in document else ""
        raise RecordingError(filename, [_issue(marks, where, message)])
    version = document.get("version")
    if version != VERSION:
        message = (
            f"unsupported recording version {json.dumps(version)}: this vesanor-mock reads "
            f"version {VERSION}"
        )
        where = "/version" if "version" in document else ""
        raise RecordingError(filename, [_issue(marks, where, message)])


def _issue(marks: JsonMarks, path: str, message: str, key: bool = False) -> ScenarioIssue:
    """An issue located in the file; under `/exchanges/i` it names the exchange."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "exchanges" and parts[2].isdigit():
        message = f"exchange {int(parts[2]) + 1}: {message}"
    return ScenarioIssue(message, *marks.locate(path, key), path)


def _sorted(issues: list[ScenarioIssue]) -> list[ScenarioIssue]:
    return sorted(issues, key=lambda i: (i.line or 0, i.column or 0))


def _check_exchanges(exchanges: Sequence[Exchange], marks: JsonMarks) -> list[ScenarioIssue]:
    """Order, paths, and placeholders handed out before they are used."""
    issues: list[ScenarioIssue] = []
    handed: set[str] = set()
    for index, exchange in enumerate(exchanges):
        at = f"/exchanges/{index}"
        if exchange.seq != index + 1:
            issues.append(
                _issue(
                    marks,
                    at + "/seq",
                    f"seq {exchange.seq} is out of order: expected {index + 1} (exchanges are "
                    "written in the order they were answered)",
                )
            )
        method, pattern = ENDPOINT_PATHS[exchange.endpoint]
        request = exchange.request
        if request["method"] != method or not pattern.fullmatch(str(request["path"])):
            issues.append(
                _issue(
                    marks,
                    at + "/request/path",
                    f"{request['method']} {request['path']} is not the {exchange.endpoint} "
                    f"endpoint ({method} {pattern.pattern})",
                )
            )
        for placeholder in placeholders_in(request):
            kind = kind_of(placeholder)
            if kind == "key" or placeholder in handed:
                continue
            issues.append(
                _issue(
                    marks,
                    at + "/request",
                    f"the request uses {placeholder} before any earlier answer handed it out "
                    "(exchanges reordered or edited by hand?)",
                )
            )
            handed.add(placeholder)  # report each placeholder once
        handed.update(placeholders_in(exchange.response))
    return issues
