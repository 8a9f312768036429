"""The request edge shared by every route: ids, auth, body reading, JSON, the error envelope."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..errors import (
    ApiError,
    ClientAborted,
    FieldError,
    MalformedJson,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

JSON_TYPE = "application/json"


def dumps(payload: Any) -> bytes:
    """Compact, deterministic JSON bytes (UTF-8, non-ASCII kept)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(
    status: int, payload: Any, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer carrying its X-Request-Id."""
    return json_bytes_response(status, dumps(payload), request_id, headers)


def json_bytes_response(
    status: int, content: bytes, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    """An already encoded JSON answer carrying its X-Request-Id."""
    all_headers = {"X-Request-Id": request_id}
    if headers:
        all_headers.update(headers)
    return Response(content, status_code=status, headers=all_headers, media_type=JSON_TYPE)


def envelope(error: ApiError, request_id: str) -> dict[str, Any]:
    """The error envelope of PROTOCOL.md §1.2."""
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "request_id": request_id,
        }
    }


def error_response(error: ApiError, request_id: str) -> Response:
    """Render an ApiError with its status and headers."""
    return json_response(error.status, envelope(error, request_id), request_id, error.headers)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None.

    More than one `Authorization` header is refused (401): no server can say which one a
    client meant, so the mock trusts neither.
    """
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:
        raise unauthorized(f"{len(headers)} Authorization headers: send exactly one")
    header = headers[0] if headers else None
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def unauthorized(message: str) -> Unauthorized:
    """401 with the `WWW-Authenticate: Bearer` challenge."""
    return Unauthorized(message, headers={"WWW-Authenticate": "Bearer"})


def check_media_type(request: Request) -> None:
    """415 unless the Content-Type is absent or application/json (parameters allowed)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != JSON_TYPE:
        raise UnsupportedMediaType(
            f"expected Content-Type application/json, got {content_type!r}",
            details={"content_type": content_type, "expected": JSON_TYPE},
        )


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """Read the body, refusing (413) anything over `limit` bytes before parsing it.

    A client that goes away before the body is whole (a short body, a bad chunk, a closed
    socket) raises ClientAborted: nothing of such a request is acted on. So does a
    connection the server is already closing once the body is read (bytes pipelined after
    a short `Content-Length` that the HTTP parser refused): the client will never see the
    answer, so the request must not change anything.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ClientAborted(f"the request body did not arrive whole within {timeout_s} s") from None
    except ClientDisconnect:
        raise ClientAborted("the client went away before its request body was read whole") from None
    if connection_closing(request):
        raise ClientAborted("the connection was closed by the HTTP layer after the body was read")
    return b"".join(chunks)


CLOSING_KEY = "vesanor.connection_closing"
"""The scope key of a callable that says whether the server is closing this connection."""


def connection_closing(request: Request) -> bool:
    """True when the server has already started closing this request's connection."""
    check = request.scope.get(CLOSING_KEY)
    return bool(check()) if callable(check) else False


def too_large(limit: int) -> PayloadTooLarge:
    """413 naming the limit."""
    return PayloadTooLarge(
        f"request body is larger than the {limit}-byte limit", details={"max_body_bytes": limit}
    )


MAX_INT_DIGITS = 4300
"""The longest integer a body may hold (Python's own limit for reading one)."""
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a double (1e400) is refused, not infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:32]} is too large")
    return value


def _bounded_int(text: str) -> int:
    """A JSON integer; one with more digits than MAX_INT_DIGITS is refused."""
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"a number has {len(text)} digits, more than {MAX_INT_DIGITS}")
    return int(text)


def has_lone_surrogate(value: Any) -> bool:
    """True when a string (or key) anywhere in a parsed body holds an unpaired surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body; an empty body is `{}`. Anything unparseable is 400 MALFORMED_JSON.

    Only a body of zero bytes is empty: whitespace alone is not a JSON text, so `" \\t"` is
    400 like any other body that is not JSON (a client that sends it has a bug to see).

    Beyond the grammar, a body must be text a JSON answer can carry back: no number out of
    a double's range and no unpaired `\\ud800`-`\\udfff` escape (neither is Unicode text).
    """
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(
            f"request body is not UTF-8 (invalid byte at offset {exc.start})",
            details={"offset": exc.start},
        ) from None
    body = _loads(text)
    if SURROGATE_ESCAPE.search(text) and has_lone_surrogate(body):
        raise MalformedJson(
            "request body is not valid JSON: a string holds an unpaired UTF-16 surrogate escape"
        )
    return body


def _loads(text: str) -> Any:
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            details={"line": exc.lineno, "column": exc.colno, "offset": exc.pos},
        ) from None
    except ValueError as exc:
        raise MalformedJson(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedJson("request body is nested too deeply to parse") from None


def require_object(body: Any) -> dict[str, Any]:
    """422 unless the JSON body is an object."""
    if not isinstance(body, dict):
        raise ValidationFailed(
            [FieldError("", f"expected a JSON object, got {json_type(body)}", "type")]
        )
    return body


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
