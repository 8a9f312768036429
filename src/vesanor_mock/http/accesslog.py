"""The access log: one line per `/api/v1` request with its status, session and decision.

Records go to the `vesanor_mock.access` logger at INFO, built only when someone listens
(so tests and benchmarks pay one level check). `configured` gives `vesanor-mock serve`
its output, text lines or one JSON object per line, for as long as it runs. Nothing from
the headers is logged, so an API key never reaches the log; the decision is read from the
answer the client received.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Collection, Iterator
from typing import Any, TextIO
from urllib.parse import unquote

from ..domain.journal import Entry
from ..scenarios.export import mask

log = logging.getLogger("vesanor_mock.access")
FIELDS = "access"
SECRET_PARAM = re.compile(
    r".*(?:key|token|secret|password|passwd|auth|credential|signature|sig).*", re.IGNORECASE
)
"""Query parameters whose values are secrets: masked in the journal and the log."""


def shown_path(path: str, query: bytes, secrets: Collection[str] = ()) -> str:
    """The path and query of a request as the journal and the log show it (PROTOCOL §6.1).

    The value of a query parameter named like a secret (`access_token`, `api_key`, ...), and
    any value equal to one of `secrets`, is masked (`vsk_te…0042`); characters that are not
    printable (terminal escapes, NUL, C1 controls) are written as `\\xNN` escapes.
    """
    shown = printable(path)
    if not query:
        return shown
    pairs = []
    for part in query.decode("latin-1").split("&"):
        name, sep, value = part.partition("=")
        plain = unquote(value)
        if sep and (SECRET_PARAM.fullmatch(unquote(name)) or plain in secrets) and plain:
            value = mask(plain)
        pairs.append(f"{name}{sep}{value}")
    return f"{shown}?{printable('&'.join(pairs))}"


def printable(text: str) -> str:
    """`text` with every non-printable character escaped (`\\x1b`, `\\x00`, `\\u2028`)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def log_entry(entry: Entry) -> None:
    """Log one journaled request (a no-op unless INFO is enabled)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = access_fields(entry)
    log.info(text_line(fields), extra={FIELDS: fields})


def access_fields(entry: Entry) -> dict[str, Any]:
    """What the access log says about one request."""
    found = entry.decision or decision(entry.response_body)
    return {
        "request_id": entry.request_id,
        "method": entry.method,
        "path": entry.path,
        "endpoint": entry.endpoint,
        "status": entry.status,
        "session_id": entry.session_id,
        "outcome": entry.outcome,
        "decision": found,
        "error": entry.error or error_code(entry.response_body),
        "rules_fired": list(entry.rules_fired),
        "blocked": blocked(entry.response_body) if found in ("block", "partial") else [],
        "duration_ms": entry.duration_ms,
    }


def blocked(body: Any) -> list[str]:
    """What a block answer refused, as `tool:reason,reason` (a preflight: `:reason`)."""
    if isinstance(body, bytes):
        body = json.loads(body)
    if not isinstance(body, dict):
        return []
    found = []
    for call in body.get("calls") or ():
        if isinstance(call, dict) and call.get("decision") == "block":
            codes = ",".join(r.get("code", "?") for r in call.get("reasons") or ())
            found.append(f"{call.get('tool_name')}:{codes}")
    if body.get("decision") == "block" and isinstance(body.get("reasons"), list):
        found.append(":" + ",".join(r.get("code", "?") for r in body["reasons"]))
    return found


def log_control(event: str, message: str, **fields: Any) -> None:
    """Log one change made through the control API (reset, scenario load, rules, clock),
    so a restart of `req_` ids or a new rule is explained in the log."""
    if not log.isEnabledFor(logging.INFO):
        return
    text = f"control {event}: {message}"
    log.info(text, extra={FIELDS: {"control": event, "message": text, **fields}})


def decision(body: Any) -> str | None:
    """The policy's decision in the answer (`allow`, `block`, `partial`), if any."""
    found = body.get("decision") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


def error_code(body: Any) -> str | None:
    """The error code of an answer in the error envelope, if it is one."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def text_line(fields: dict[str, Any]) -> str:
    """`POST /api/v1/... 200 session=s-1 decision=block rules=r1 (handled, 1.2 ms) req_…`."""
    status = fields["status"] if fields["status"] is not None else fields["outcome"]
    parts = [f"{fields['method']} {fields['path']} {status}"]
    if fields["session_id"]:
        parts.append(f"session={fields['session_id']}")
    if fields["decision"]:
        parts.append(f"decision={fields['decision']}")
    if fields["error"]:
        parts.append(f"error={fields['error']}")
    if fields["rules_fired"]:
        parts.append("rules=" + ",".join(fields["rules_fired"]))
    if fields["blocked"]:
        parts.append("blocked=" + ";".join(fields["blocked"]))
    parts.append(f"({fields['outcome']}, {fields['duration_ms']} ms) {fields['request_id']}")
    return printable(" ".join(parts))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, and the access fields or message."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, FIELDS, None)
        if fields is not None:
            out.update(fields)
        else:
            out["message"] = record.getMessage()
            if record.exc_info:
                out["error"] = self.formatException(record.exc_info)
        line = json.dumps(out, ensure_ascii=False)
        return line if line.isprintable() else json.dumps(out)  # \u escapes for controls


@contextlib.contextmanager
def configured(log_format: str, stream: TextIO | None = None) -> Iterator[logging.Handler]:
    """While inside: vesanor-mock's logs (access at INFO, errors) and uvicorn's errors go to
    `stream` (default stdout) as text or JSON lines; on exit the loggers are as before."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _TEXT)
    loggers = [logging.getLogger(name) for name in ("vesanor_mock", "uvicorn.error")]
    before = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    loggers[0].setLevel(logging.WARNING if log_format == "off" else logging.INFO)
    try:
        yield handler
    finally:
        for logger, (level, propagate) in zip(loggers, before, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


class TextFormatter(logging.Formatter):
    """`2026-11-30T12:00:00.123Z message`: the second's text is formatted once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one text line (with its traceback, if any)."""
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = f"{self._prefix}.{int(record.msecs):03d}Z {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_TEXT = TextFormatter()
