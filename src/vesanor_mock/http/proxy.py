"""Record mode (PROTOCOL §9): forward `/api/v1` to an upstream and write each exchange.

The request goes to the upstream's base URL + the same path and query, with the client's
own headers (its `Authorization` included; hop-by-hop headers, `Host` and `Accept-Encoding`
excepted, so the answer is recorded as it reads), from
a worker thread (stdlib `http.client`, off the event loop). The upstream's answer goes
back unchanged: status, body, and its headers but the hop-by-hop ones. An upstream that
refuses the connection, sends nothing within the timeout, or answers something that is
not HTTP gets the client `502 UPSTREAM_UNAVAILABLE` in the envelope, recorded as such.
Every exchange the client got an answer to is scrubbed (recording/placeholders.py) and
appended to the recording, in the order the answers were sent.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..domain.journal import Draft
from ..errors import UpstreamUnavailable
from ..recording.format import Exchange, RecordingWriter
from ..recording.placeholders import KEPT_HEADERS, Scrubber, parse_mask
from ..recording.urls import parse_upstream
from .alternate import Alternate, Incoming, error_code, journal_body
from .api import Operation
from .edge import dumps, envelope, read_body

if TYPE_CHECKING:
    from .app import MockService

DEFAULT_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 64 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"accept-encoding"}
"""The upstream answers in the identity encoding, so what is recorded is the body itself."""
NOT_RETURNED = HOP_BY_HOP | {"date", "server"}


class UpstreamFailure(Exception):
    """The upstream gave no HTTP answer; the message says why."""


@dataclass(frozen=True)
class UpstreamAnswer:
    """What the upstream answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Upstream:
    """One upstream base URL, spoken to with the stdlib, one connection per request."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = parse_upstream(url)
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout

    def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamAnswer:
        """Forward one request (blocking); UpstreamFailure when no HTTP answer came."""
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=self.timeout)
        try:
            connection.putrequest(method, self.prefix + target, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if body or method == "POST":
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            answer = connection.getresponse()
            data = answer.read(MAX_ANSWER_BYTES + 1)
            if len(data) > MAX_ANSWER_BYTES:
                raise UpstreamFailure(f"answered more than {MAX_ANSWER_BYTES} bytes")
            return UpstreamAnswer(answer.status, list(answer.getheaders()), data)
        except TimeoutError:
            raise UpstreamFailure(f"no answer within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            raise UpstreamFailure("connection refused") from None
        except http.client.HTTPException as exc:
            reason = type(exc).__name__
            raise UpstreamFailure(f"did not answer HTTP ({reason})") from None
        except OSError as exc:
            raise UpstreamFailure(f"cannot reach it: {exc.strerror or exc}") from None
        finally:
            connection.close()


class Recorder(Alternate):
    """The recording proxy: forwards, answers back, writes the recording."""

    def __init__(
        self,
        upstream: str,
        output: str | Path,
        masks: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.upstream = Upstream(upstream, timeout)
        self.scrubber = Scrubber([parse_mask(mask) for mask in masks])
        self.writer = RecordingWriter(output, self.upstream.url, list(masks))
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """Exchanges recorded so far."""
        return self.writer.count

    async def answer(
        self, service: MockService, request: Request, op: Operation, draft: Draft
    ) -> Response:
        """Forward the request, answer the client, record the exchange."""
        raw = await read_body(request, service.spec.max_body_bytes)
        incoming = Incoming(request, raw)
        draft.request_body, draft.size = journal_body(raw), len(raw)
        target = incoming.path + (f"?{incoming.query_string}" if incoming.query_string else "")
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in NOT_FORWARDED
        ]
        draft.outcome = "handled"
        try:
            answer = await asyncio.to_thread(
                self.upstream.send, incoming.method, target, headers, raw
            )
        except UpstreamFailure as exc:
            error = UpstreamUnavailable(
                f"the upstream {self.upstream.url} {exc}",
                details={"upstream": self.upstream.url, "reason": str(exc)},
            )
            content = dumps(envelope(error, draft.request_id))
            answer = UpstreamAnswer(
                error.status,
                [("content-type", "application/json"), ("x-request-id", draft.request_id)],
                content,
            )
            draft.error = error.code
        draft.status = answer.status
        draft.response_body = journal_body(answer.body)
        draft.request, draft.answer = incoming.body()[0], _parsed(answer.body)[0]
        draft.committed = 200 <= answer.status < 300
        if answer.status >= 400 and draft.error is None:
            draft.error = error_code(draft.answer)
        draft.size += len(answer.body)
        self._record(op, incoming, answer)
        return _response(answer)

    def _record(self, op: Operation, incoming: Incoming, answer: UpstreamAnswer) -> None:
        """Scrub and append the exchange (under a lock: placeholders number in order)."""
        with self._lock:
            scrub = self.scrubber
            body, text = incoming.body()
            recorded_request: dict[str, Any] = {
                "method": incoming.method,
                "auth": scrub.authorization(incoming.authorization),
            }
            recorded_request["path"] = scrub.request_text(incoming.path)
            if incoming.query:
                recorded_request["query"] = scrub.query(incoming.query)
            if incoming.content_type is not None:
                recorded_request["content_type"] = incoming.content_type
            if text is not None:
                recorded_request["body_text"] = scrub.request_text(text)
            elif body is not None:
                recorded_request["body"] = scrub.request_body(body)
            request_form: dict[str, Any] = {
                name: recorded_request[name]
                for name in ("method", "path", "query", "auth", "content_type", "body", "body_text")
                if name in recorded_request
            }
            self.writer.append(
                Exchange(self.writer.count + 1, op.name, request_form, self._answer(answer))
            )

    def _answer(self, answer: UpstreamAnswer) -> dict[str, Any]:
        scrub = self.scrubber
        headers: dict[str, str] = {}
        for name, value in answer.headers:
            low = name.lower()
            if low == "x-request-id":
                headers[low] = scrub.response_id(value)
            elif low in KEPT_HEADERS:
                headers[low] = scrub.text(value)
        recorded: dict[str, Any] = {
            "status": answer.status,
            "headers": {name: headers[name] for name in KEPT_HEADERS if name in headers},
        }
        incoming_body, text = _parsed(answer.body)
        if text is not None:
            recorded["body_text"] = scrub.text(text)
        elif incoming_body is not None:
            recorded["body"] = scrub.response_body(incoming_body)
        return recorded


def _parsed(raw: bytes) -> tuple[Any, str | None]:
    if not raw.strip():
        return None, None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text), None
    except ValueError:
        return None, text


def _response(answer: UpstreamAnswer) -> Response:
    """The upstream's answer for the client: same status, body and headers that matter."""
    response = Response(answer.body, status_code=answer.status)
    raw = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers
        if name.lower() not in NOT_RETURNED
    ]
    raw.append((b"content-length", str(len(answer.body)).encode("latin-1")))
    response.raw_headers = raw
    return response
