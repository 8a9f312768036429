"""The run in words: journal entries as lines, and the header of an export.

Shared by the client's assertion reports, `vesanor-mock journal`, `vesanor-mock export`
and the dashboard's export download (`GET /_mock/export?format=yaml`), so each says the
same thing the same way. Plain Python over the journal's wire form (PROTOCOL.md §6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from . import __version__

JOURNAL_LINES = 40


def format_journal(journal: Sequence[Mapping[str, Any]]) -> list[str]:
    """The requests the mock saw, one per line (the last JOURNAL_LINES of them)."""
    if not journal:
        return ["requests seen: none"]
    lines = [f"requests seen ({len(journal)}, oldest first):"]
    if len(journal) > JOURNAL_LINES:
        lines.append(f"  ... {len(journal) - JOURNAL_LINES} earlier request(s)")
    for entry in journal[-JOURNAL_LINES:]:
        status = entry["status"] if entry["status"] is not None else entry["outcome"]
        notes = [entry["endpoint"] or "unknown path"]
        if entry.get("session_id"):
            notes.append(f"session {entry['session_id']}")
        if entry.get("rules_fired"):
            notes.append("rules " + ", ".join(entry["rules_fired"]))
        request = f"#{entry['seq']} {entry['method']} {entry['path']}"
        code = _error_code(entry.get("response_body"))
        answer = f"{status} {code}" if code else f"{status}"
        lines.append(f"  {request} -> {answer} ({'; '.join(notes)})")
    return lines


def _error_code(body: Any) -> str | None:
    """The `error.code` of an answer in the error envelope (`409 STALE_STATE_VERSION`)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    return code if isinstance(code, str) else None


def export_header(url: str, answer: dict[str, Any], journal: list[dict[str, Any]]) -> str:
    """The comment block of an export: where it came from, what was replaced or left out."""
    kept = answer["journal"]
    lines = [
        f"Exported by vesanor-mock {__version__} from {url} (scenario file: {answer['source']}).",
        "Replay: vesanor-mock serve --scenario THIS_FILE, run the same client, then",
        "vesanor-mock verify: the expectations below are the requests this run made.",
    ]
    if kept["total"] > kept["entries"]:
        lines.append(
            f"WARNING: {kept['total'] - kept['entries']} early request(s) had left the journal "
            "(journal_limit); only the rest are expected."
        )
    for item in answer["keys"]:
        lines.append(
            f"API key {item['key']} of tenant {item['tenant']} is replaced by "
            f"{item['export_key']}: point the client at that key to replay."
        )
    if answer["runtime_rules"]:
        lines.append(
            f"{answer['runtime_rules']} rule(s) were added at run time; they are written as "
            "scenario rules, counting from the first request."
        )
    lines += ["Control-API calls made during the run (clock advances, resets) are not replayed."]
    for item in answer["original_expect"]:
        lines.append("The scenario's own expectation (not checked here): " + json.dumps(item))
    return "\n".join([*lines, *(line.strip() for line in format_journal(journal))])


def journal_line(entry: Mapping[str, Any]) -> str:
    """One request on one line, for `vesanor-mock journal`: time, request id, seq,
    endpoint, session, status and error code, decision with reasons, each call's decision
    and reasons, rules fired, faults, outcome. `entry` is a journal entry with its digest.
    """
    digest = entry.get("digest") or {}
    status = "dropped" if entry["status"] is None else str(entry["status"])
    if digest.get("error"):
        status += f" {digest['error']}"
    parts = [entry["at"], entry["request_id"], f"#{entry['seq']}"]
    parts.append(entry["endpoint"] or f"{entry['method']} {entry['path']}")
    if entry.get("session_id"):
        parts.append(f"session {entry['session_id']}")
    parts.append(f"-> {status}")
    if digest.get("decision"):
        reasons = digest.get("reasons") or []
        parts.append(" ".join([digest["decision"], *(",".join(reasons) for _ in reasons[:1])]))
    calls = [
        f"{call['tool']}: {call['decision']}"
        + (f" {','.join(call['reasons'])}" if call["reasons"] else "")
        for call in digest.get("calls") or []
    ]
    if calls:
        parts.append(f"({'; '.join(calls)})")
    if entry.get("rules_fired"):
        parts.append("rules " + ",".join(entry["rules_fired"]))
    if digest.get("faults"):
        parts.append("faults " + ",".join(digest["faults"]))
    parts.append(f"[{entry['outcome']}]")
    return " ".join(parts)
