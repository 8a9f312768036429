"""Drift (PROTOCOL §9): send a recording's requests to the mock, report where it answers
differently from what was recorded.

The requests go in recorded order to a fresh mock (`send`, in-process), with the ids the
mock handed out in place of the placeholders and `{{key_N}}` as the scenario's N-th API key
(its last when it has fewer). Each answer is compared with the recorded one: the status
(and the error code, when the statuses differ), else the body field by field; a path in
the report points into `{"status", "body"}` (`/body/decision`). Ids, fence
tokens, timestamps and request ids are compared only for what they are (an id stays the
same id), never for their values; an error's `message` is prose and is not compared. An
exchange recorded while the upstream did not answer (502 UPSTREAM_UNAVAILABLE) is skipped.
A request that names an id the mock never handed out cannot be sent: that is drift too.
Plain Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .format import Exchange, Recording
from .placeholders import PLACEHOLDER, Binder, Comparison, Difference, Unbound, placeholders_in

Send = Callable[[str, str, list[tuple[str, str]], bytes], tuple[int | None, bytes]]
"""(method, path with query, headers, body) -> (status or None if dropped, answer bytes)."""
IGNORED = frozenset({"/body/error/message"})
UPSTREAM_DOWN = "UPSTREAM_UNAVAILABLE"


@dataclass
class Drifted:
    """One exchange where the mock differs from the recording."""

    exchange: Exchange
    differences: list[Difference] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the report."""
        out: dict[str, Any] = {
            "seq": self.exchange.seq,
            "endpoint": self.exchange.endpoint,
            "method": self.exchange.request["method"],
            "path": self.exchange.request["path"],
            "differences": [d.to_dict() for d in self.differences],
        }
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass
class DriftReport:
    """Everything `vesanor-mock drift` says."""

    recording: str
    scenario: str
    exchanges: int
    drifted: list[Drifted] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the mock answered every compared exchange as recorded."""
        return not self.drifted

    def to_dict(self) -> dict[str, Any]:
        """`--json` output."""
        return {
            "recording": self.recording,
            "scenario": self.scenario,
            "exchanges": self.exchanges,
            "compared": self.exchanges - len(self.skipped),
            "skipped": self.skipped,
            "drifted": len(self.drifted),
            "drift": [item.to_dict() for item in self.drifted],
        }

    def text(self) -> str:
        """The human report."""
        compared = self.exchanges - len(self.skipped)
        head = (
            f"vesanor-mock drift: {self.recording} against scenario {self.scenario}: "
            f"{len(self.drifted)} of {compared} exchange(s) differ"
        )
        lines = [head]
        if self.skipped:
            numbers = ", ".join(str(seq) for seq in self.skipped)
            lines.append(f"  skipped (the upstream did not answer when recording): {numbers}")
        for item in self.drifted:
            request = item.exchange.request
            lines.append(
                f"  exchange {item.exchange.seq} {item.exchange.endpoint} "
                f"{request['method']} {request['path']}"
            )
            if item.note:
                lines.append(f"    {item.note}")
            for difference in item.differences:
                lines.append(f"    {difference.path or '/'}: {_side(difference)}")
        if self.ok:
            lines.append("  no drift: the mock answers every compared exchange as recorded")
        return "\n".join(lines)


def _side(difference: Difference) -> str:
    recorded = _shown(difference.expected) if difference.has_expected else "absent"
    mock = _shown(difference.received) if difference.has_received else "absent"
    return f"recorded {recorded}, mock {mock}"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


def drift(recording: Recording, send: Send, api_keys: Sequence[str], scenario: str) -> DriftReport:
    """Send every recorded request to the mock and compare the answers."""
    report = DriftReport(recording.source, scenario, len(recording.exchanges))
    binder = Binder()
    for number in range(1, len(api_keys) + _keys_named(recording) + 1):
        key = api_keys[min(number, len(api_keys)) - 1] if api_keys else ""
        binder.forward[f"{{{{key_{number}}}}}"] = key  # a recorded key stands for a real one
    for exchange in recording.exchanges:
        response = exchange.response
        if response["status"] == 502 and _code(response.get("body")) == UPSTREAM_DOWN:
            report.skipped.append(exchange.seq)
            continue
        try:
            method, target, headers, body = _request(exchange, binder, api_keys)
        except Unbound as missing:
            note = (
                f"not sent: it names {missing.placeholder}, which the mock never handed out "
                "(see the exchanges before it)"
            )
            report.drifted.append(Drifted(exchange, note=note))
            continue
        status, content = send(method, target, headers, body)
        item = _compare(exchange, binder, status, content)
        if item.differences or item.note:
            report.drifted.append(item)
    return report


def _keys_named(recording: Recording) -> int:
    """How many distinct keys the recording numbers."""
    numbers = [
        int(found.group(2))
        for exchange in recording.exchanges
        for placeholder in placeholders_in(exchange.request)
        if (found := PLACEHOLDER.fullmatch(placeholder)) and found.group(1) == "key"
    ]
    numbers += [
        int(found.group(2))
        for exchange in recording.exchanges
        if exchange.request["auth"] and (found := PLACEHOLDER.fullmatch(exchange.request["auth"]))
    ]
    return max(numbers, default=0)


def _request(
    exchange: Exchange, binder: Binder, api_keys: Sequence[str]
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    request = exchange.request
    path = str(binder.render(request["path"]))
    query = binder.render(request.get("query", {}))
    target = path + (f"?{urlencode(query)}" if query else "")
    headers: list[tuple[str, str]] = []
    auth = request["auth"]
    if auth is not None:
        headers.append(("authorization", f"Bearer {binder.render(auth)}"))
    if "content_type" in request:
        headers.append(("content-type", str(request["content_type"])))
    body = b""
    if "body" in request:
        body = json.dumps(binder.render(request["body"]), ensure_ascii=False).encode("utf-8")
    elif "body_text" in request:
        body = str(binder.render(request["body_text"])).encode("utf-8")
    return str(request["method"]), target, headers, body


def _compare(exchange: Exchange, binder: Binder, status: int | None, content: bytes) -> Drifted:
    recorded = exchange.response
    item = Drifted(exchange)
    if status is None:
        item.note = "the mock closed the connection without answering"
        item.differences.append(Difference("/status", recorded["status"], None))
        return item
    body, text = _parse(content)
    comparison = Comparison(binder, ignore=IGNORED)
    if status != recorded["status"]:
        comparison.differ("/status", recorded["status"], status)
        expected_code, code = _code(recorded.get("body")), _code(body)
        if expected_code != code:
            comparison.differ(
                "/body/error/code",
                expected_code,
                code,
                has_expected=expected_code is not None,
                has_received=code is not None,
            )
    elif "body_text" in recorded or text is not None:
        comparison.compare(recorded.get("body_text"), text, "/body_text")
    else:
        comparison.compare(recorded.get("body"), body, "/body")
    comparison.commit()
    item.differences = comparison.differences
    return item


def _parse(content: bytes) -> tuple[Any, str | None]:
    if not content.strip():
        return None, None
    text = content.decode("utf-8", "replace")
    try:
        return json.loads(text), None
    except ValueError:
        return None, text


def _code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
