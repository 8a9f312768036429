"""A Python client for a running mock's `/_mock` control API, with readable assertions.

    control = MockClient("http://127.0.0.1:8080")
    control.load_scenario("my-scenario.yaml")
    ...  # run the code under test
    control.assert_called("proposals", count=1, status=200)
    control.assert_sequence(["create_session", "preflight", "proposals"])
    control.assert_verified()  # the scenario's own `expect`

Failed assertions raise `ExpectationFailed` (an AssertionError) whose message shows what
the mock saw: the counts, and every request in order. The only module that imports requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .errors import MockError, ScenarioError, ScenarioIssue
from .journal_lines import format_journal

Transport = Callable[[str, str, dict[str, str], dict[str, str], bytes | None], tuple[int, bytes]]
"""(method, url, headers, query, body) -> (status, body): how the client reaches the mock."""

POSTED = "<POST /_mock/scenario>"


class ControlError(MockError):
    """The control API answered an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class ExpectationFailed(AssertionError):
    """What the mock saw is not what the test expected; the message says what it saw."""


@dataclass(frozen=True)
class Verification:
    """The answer of a verification: `ok`, how many were checked, and each failure."""

    ok: bool
    checked: int
    failures: list[dict[str, Any]]
    journal: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> str:
        """Every failure with what was seen, the findings, then the requests in order."""
        lines = format_findings(self.findings, self.journal) if self.findings else []
        return "\n".join([*lines, format_report(self.checked, self.failures, self.journal)])


def requests_transport(timeout: float = 10.0) -> Transport:
    """A transport over one `requests.Session` (keep-alive)."""
    http = requests.Session()

    def send(
        method: str, url: str, headers: dict[str, str], query: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        try:
            answer = http.request(
                method, url, headers=headers, params=query, data=body, timeout=timeout
            )
        except requests.RequestException as exc:
            raise ControlError(f"cannot reach the mock at {url} ({type(exc).__name__})") from None
        return answer.status_code, answer.content

    return send


class MockClient:
    """Calls `/_mock/*` on one mock; every method answers the decoded JSON (or raises)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: Transport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.send = transport or requests_transport(timeout)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One control request; an error answer raises ControlError (ScenarioError for 422
        SCENARIO_INVALID)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        status, content = self.send(method, f"{self.url}/_mock{path}", headers, params, data)
        try:
            answer = json.loads(content) if content else None
        except ValueError:
            answer = None
        if status != 200:
            raise _error(method, path, status, answer)
        return answer

    def health(self) -> dict[str, Any]:
        """GET /_mock/health: `{"status": "ok", "scenario"}`."""
        return dict(self.call("GET", "/health"))

    def reset(self) -> dict[str, Any]:
        """Back to the loaded scenario's initial state (run-time rules dropped)."""
        return dict(self.call("POST", "/reset"))

    def load_scenario(self, scenario: str | Path | Mapping[str, Any]) -> dict[str, Any]:
        """Load a scenario: a file path, a bundled name, YAML/JSON text, or a dict; replaces
        all state.

        A file's `contracts_dir` and `extends` paths stay relative to the file (the server
        must see the same disk, as a local mock does). A word that is no file
        (`"forced-block"`) is a bundled scenario's name. A broken scenario raises
        ScenarioError.
        """
        if isinstance(scenario, str) and _bundled_name(scenario):
            return self.load_bundled(scenario)
        if isinstance(scenario, Mapping):
            return self._post_scenario(json.dumps(scenario).encode(), "application/json", None)
        if isinstance(scenario, Path) or ("\n" not in scenario and Path(scenario).is_file()):
            path = Path(scenario)
            kind = "application/json" if path.suffix == ".json" else "application/yaml"
            folder = str(path.resolve().parent)
            return self._post_scenario(path.read_bytes(), kind, folder, str(path))
        return self._post_scenario(scenario.encode(), "application/yaml", None)

    def load_bundled(self, name: str) -> dict[str, Any]:
        """Load a bundled scenario by name (`POST /_mock/scenario {"name": ...}`)."""
        return dict(self.call("POST", "/scenario", {"name": name}))

    def scenarios(self) -> list[dict[str, Any]]:
        """The bundled scenarios: `{"name", "description", "source"}` each."""
        return list(self.call("GET", "/scenarios")["scenarios"])

    def rules(self) -> list[dict[str, Any]]:
        """Every rule with its counts and, for one that never fired, its near misses."""
        return list(self.call("GET", "/rules")["rules"])

    def _post_scenario(
        self, data: bytes, kind: str, base_dir: str | None, filename: str = POSTED
    ) -> dict[str, Any]:
        try:
            query = {"base_dir": base_dir}
            return dict(self.call("POST", "/scenario", raw=data, content_type=kind, query=query))
        except ScenarioError as error:
            raise _renamed(error, filename) from None

    def state(self) -> dict[str, Any]:
        """GET /_mock/state: tenants (keys masked), sessions, workflows, plans, rules, clock."""
        return dict(self.call("GET", "/state"))

    def journal(
        self,
        *,
        endpoint: str | None = None,
        session_id: str | None = None,
        status: int | None = None,
        since: int | None = None,
    ) -> list[dict[str, Any]]:
        """The journal's entries, oldest first, filtered (`since`: seq strictly after)."""
        query = {"endpoint": endpoint, "session_id": session_id, "status": status, "since": since}
        return list(self.call("GET", "/journal", query=query)["entries"])

    def digests(
        self,
        *,
        endpoint: str | None = None,
        session_id: str | None = None,
        since: int | None = None,
        tail: int | None = None,
    ) -> list[dict[str, Any]]:
        """Journal entries with their digests and without bodies (what the dashboard and
        `vesanor-mock journal` show), oldest first."""
        query = {
            "endpoint": endpoint,
            "session_id": session_id,
            "since": since,
            "tail": tail,
            "digest": "true",
            "bodies": "false",
        }
        return list(self.call("GET", "/journal", query=query)["entries"])

    def changes(self) -> Iterator[dict[str, Any]]:
        """Follow GET /_mock/stream: each change event's `{"seq", "total", "generation"}`,
        until the server closes the stream (a ControlError if it cannot be opened)."""
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.url}/_mock/stream"
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=(10, None))
        except requests.RequestException as exc:
            raise ControlError(f"cannot reach the mock at {url} ({type(exc).__name__})") from None
        with response:
            if response.status_code != 200:
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                raise _error("GET", "/stream", response.status_code, answer)
            try:
                for line in response.iter_lines():
                    if line.startswith(b"data:"):
                        yield json.loads(line[5:])
            except requests.RequestException:
                return

    def verify(
        self, expect: Sequence[Mapping[str, Any]] | None = None, *, findings: bool = True
    ) -> Verification:
        """Check expectations (default: the loaded scenario's) against the journal, and,
        unless `findings=False`, the client checks (not ok with an error finding)."""
        body: dict[str, Any] | None = None if expect is None else {"expect": list(expect)}
        if not findings:
            body = {**(body or {}), "findings": "off"}
        answer = self.call("POST", "/verify", body)
        journal = [] if answer["ok"] else self.journal()
        found = list(answer.get("findings", []))
        return Verification(answer["ok"], answer["checked"], answer["failures"], journal, found)

    def findings(
        self, *, session_id: str | None = None, severity: str | None = None
    ) -> list[dict[str, Any]]:
        """GET /_mock/findings: what the client did wrong (docs/checks.md), oldest first."""
        query = {"session_id": session_id, "severity": severity}
        return list(self.call("GET", "/findings", query=query)["findings"])

    def coverage(self) -> dict[str, Any]:
        """GET /_mock/coverage: `situations` (id, kind, detail, seen), covered, total, missing."""
        return dict(self.call("GET", "/coverage"))

    def clear_coverage(self) -> dict[str, Any]:
        """DELETE /_mock/coverage: forget what was seen; answers the cleared report."""
        return dict(self.call("DELETE", "/coverage"))

    def assert_no_findings(self, severity: str = "error") -> None:
        """Assert no finding of `severity` ("error"; "warning" counts errors too) exists."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        if severity not in ("error", "warning"):
            raise ValueError(f"severity must be 'error' or 'warning', not {severity!r}")
        found = [f for f in self.findings() if severity == "warning" or f["severity"] == "error"]
        if found:
            raise ExpectationFailed("\n".join(format_findings(found, self.journal())))

    def clock(self) -> dict[str, Any]:
        """GET /_mock/clock: `{"now", "start", "mode"}`."""
        return dict(self.call("GET", "/clock"))

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the virtual clock forward; answers the clock."""
        return dict(self.call("POST", "/clock/advance", {"seconds": seconds}))

    def add_rules(self, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add rules after the scenario's; answers every rule in force (`id`, `source`)."""
        return list(self.call("POST", "/rules", {"rules": list(rules)})["rules"])

    def clear_rules(self) -> int:
        """Remove the rules added at run time; answers how many were removed."""
        return int(self.call("DELETE", "/rules")["removed"])

    def export(self) -> dict[str, Any]:
        """GET /_mock/export: the run as a scenario document, with notes on what was replaced."""
        return dict(self.call("GET", "/export"))

    def assert_called(
        self,
        endpoint: str,
        count: int | None = None,
        *,
        min: int | None = None,
        max: int | None = None,
        session_id: str | None = None,
        status: int | None = None,
        tool: str | None = None,
    ) -> list[dict[str, Any]]:
        """Assert how often `endpoint` was called (no count, min or max: at least once).

        Answers the matching journal entries (`tool` aside, which only the server sees).
        """
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        if count is None and min is None and max is None:
            min = 1
        given: dict[str, Any] = {"count": count, "min": min, "max": max, "tool": tool}
        given.update(session_id=session_id, status=status)
        one: dict[str, Any] = {"endpoint": endpoint}
        one.update({k: v for k, v in given.items() if v is not None})
        self._assert([one])
        name = None if endpoint == "any" else endpoint
        return self.journal(endpoint=name, session_id=session_id, status=status)

    def assert_sequence(self, endpoints: Sequence[str]) -> None:
        """Assert these endpoints were called in this order (not necessarily adjacent)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self._assert([{"sequence": list(endpoints)}])

    def assert_verified(self, expect: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Assert the expectations hold (default: the loaded scenario's `expect`)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self._assert(expect)

    def _assert(self, expect: Sequence[Mapping[str, Any]] | None) -> None:
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        result = self.verify(expect, findings=False)
        if not result.ok:
            raise ExpectationFailed(result.report())


def _error(method: str, path: str, status: int, answer: Any) -> MockError:
    """A ControlError for an error answer; a ScenarioError for a broken scenario."""
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    code, message = error.get("code"), error.get("message", "")
    if code == "SCENARIO_INVALID":
        issues = [
            ScenarioIssue(i["message"], i["line"], i["column"], i["path"], file=i["file"])
            for i in error.get("details", {}).get("issues", [])
        ]
        return ScenarioError(POSTED, issues)
    hint = " (does the mock need a control token?)" if status == 401 else ""
    text = f"{method} /_mock{path} answered {status} {code or ''}: {message}{hint}"
    return ControlError(text, status, code)


def _renamed(error: ScenarioError, filename: str) -> ScenarioError:
    """The server's issues, named after the local file that was posted."""
    issues = [
        ScenarioIssue(i.message, i.line, i.column, i.path, None if i.file == POSTED else i.file)
        for i in error.issues
    ]
    return ScenarioError(filename, issues)


def format_report(
    checked: int, failures: Sequence[Mapping[str, Any]], journal: Sequence[Mapping[str, Any]]
) -> str:
    """Each failure and what it saw, the requests in order, then `m checked, n failed`."""
    lines = []
    for failure in failures:
        lines.append(failure["message"])
        seen = failure.get("seen", {})
        if seen.get("statuses"):
            counted = ", ".join(f"{s} x{n}" for s, n in seen["statuses"].items())
            lines.append(f"  matching requests by status: {counted} (seq {seen['seqs']})")
    lines += format_journal(journal)
    lines.append(f"{checked} expectation(s) checked, {len(failures)} failed")
    return "\n".join(lines)


def format_findings(
    findings: Sequence[Mapping[str, Any]], journal: Sequence[Mapping[str, Any]] = ()
) -> list[str]:
    """Each finding: rule and message, the hint, and the requests involved, one line each."""
    by_id = {entry["request_id"]: entry for entry in journal}
    errors = sum(1 for f in findings if f["severity"] == "error")
    lines = [
        f"vesanor-mock findings: {errors} error(s), {len(findings) - errors} warning(s) "
        "(see docs/checks.md)"
    ]
    for finding in findings:
        lines.append(
            f"{finding['severity']} {finding['rule']} ({finding['protocol']}): {finding['message']}"
        )
        lines.append(f"  hint: {finding['hint']}")
        for request_id in finding["request_ids"]:
            entry = by_id.get(request_id)
            if entry is None:
                lines.append(f"  {request_id} (no longer in the journal)")
                continue
            status = entry["status"] if entry["status"] is not None else entry["outcome"]
            lines.append(
                f"  {request_id} #{entry['seq']} {entry['method']} {entry['path']} -> {status}"
            )
    return lines


def _bundled_name(text: str) -> bool:
    """True for a bare word that names no file: `forced-block`, never YAML or a path."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text)) and not Path(text).exists()
