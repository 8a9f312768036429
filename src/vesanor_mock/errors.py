"""The exception tree of vesanor-mock; stdlib only.

    MockError                         anything the mock raises on purpose
    +-- ApiError                      an answer in the error envelope (PROTOCOL.md §1.2)
    |   +-- MalformedJson             400 MALFORMED_JSON
    |   +-- Unauthorized              401 UNAUTHORIZED
    |   +-- Forbidden                 403 CONTROL_FORBIDDEN (the control API, PROTOCOL.md §6.1)
    |   +-- NotFound                  404 NOT_FOUND and the *_NOT_FOUND family
    |   +-- MethodNotAllowed          405 METHOD_NOT_ALLOWED
    |   +-- Conflict                  409: stale version, fence, lease, killed, ...
    |   +-- PayloadTooLarge           413 PAYLOAD_TOO_LARGE
    |   +-- UnsupportedMediaType      415 UNSUPPORTED_MEDIA_TYPE
    |   +-- Unprocessable             422: validation, compile, roles, artifact
    |   |   +-- ValidationFailed      422 VALIDATION_FAILED with details.errors
    |   |   +-- CompileError          422 COMPILE_ERROR with details.errors
    |   |   +-- LimitExceeded         422 MOCK_LIMIT_EXCEEDED with details {limit, max}
    |   +-- InternalError             500 INTERNAL_ERROR (a bug in the mock)
    |   +-- UpstreamUnavailable       502 UPSTREAM_UNAVAILABLE (record mode, PROTOCOL §9)
    +-- ClientAborted                 the client went away before its request was read whole
    +-- ScenarioError                 a scenario file that cannot be loaded (file, line, column)
    |   +-- RecordingError            a recording that cannot be loaded (PROTOCOL §9)
    +-- ConfigError                   a flag, environment variable or ini value that is unusable

The status of each class is its `status` attribute: this module is the one table that maps
errors to HTTP statuses. The domain raises these; only the HTTP edge renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class MockError(Exception):
    """Base of every error vesanor-mock raises on purpose."""


class ApiError(MockError):
    """An error answered to the client in the error envelope."""

    status: int = 500
    default_code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = details if details is not None else {}
        self.headers: dict[str, str] = headers or {}


class MalformedJson(ApiError):
    """The body is not valid JSON."""

    status = 400
    default_code = "MALFORMED_JSON"


class Unauthorized(ApiError):
    """Missing, malformed or unknown bearer key."""

    status = 401
    default_code = "UNAUTHORIZED"


class Forbidden(ApiError):
    """A control request from a peer or a web page that may not use the control API."""

    status = 403
    default_code = "CONTROL_FORBIDDEN"


class NotFound(ApiError):
    """A path or a resource that does not exist (for this tenant)."""

    status = 404
    default_code = "NOT_FOUND"


class MethodNotAllowed(ApiError):
    """A known path asked with a method it does not answer."""

    status = 405
    default_code = "METHOD_NOT_ALLOWED"


class Conflict(ApiError):
    """A protocol or authority violation: stale version, wrong fence, dead session..."""

    status = 409
    default_code = "CONFLICT"


class ReplayMismatch(Conflict):
    """Replay: the request is not the next one recorded for its session (PROTOCOL §9)."""

    default_code = "REPLAY_MISMATCH"


class PayloadTooLarge(ApiError):
    """A body over the configured size limit."""

    status = 413
    default_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    """A body whose Content-Type is not JSON."""

    status = 415
    default_code = "UNSUPPORTED_MEDIA_TYPE"


class Unprocessable(ApiError):
    """Well-formed JSON that cannot be acted on."""

    status = 422
    default_code = "UNPROCESSABLE"


@dataclass(frozen=True)
class FieldError:
    """One schema or semantic error at a JSON Pointer into the request body."""

    path: str
    message: str
    keyword: str

    def to_dict(self) -> dict[str, str]:
        """The wire form of the error."""
        return {"path": self.path, "message": self.message, "keyword": self.keyword}


class ValidationFailed(Unprocessable):
    """The request body fails its schema or a semantic check."""

    default_code = "VALIDATION_FAILED"

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        first = errors[0] if errors else None
        text = message or (
            f"request body is invalid at {first.path or '/'}: {first.message}"
            if first
            else "request body is invalid"
        )
        super().__init__(text, details={"errors": [e.to_dict() for e in errors]})
        self.errors = errors


class CompileError(Unprocessable):
    """A compiled_session (or contracts folder) that does not compile."""

    default_code = "COMPILE_ERROR"

    def __init__(self, errors: list[FieldError]) -> None:
        entries = [{**e.to_dict(), "reason_code": "replay_compile_error"} for e in errors]
        first = errors[0].message if errors else "contract does not compile"
        super().__init__(f"contract does not compile: {first}", details={"errors": entries})
        self.errors = errors


class LimitExceeded(Unprocessable):
    """A request that would take resident state over one of the mock's caps (PROTOCOL.md §8).

    Nothing is changed; `details` names the cap and its value.
    """

    default_code = "MOCK_LIMIT_EXCEEDED"

    def __init__(self, limit: str, maximum: int, message: str) -> None:
        super().__init__(message, details={"limit": limit, "max": maximum})
        self.limit = limit
        self.maximum = maximum


class InternalError(ApiError):
    """A bug in the mock."""

    status = 500
    default_code = "INTERNAL_ERROR"


class UpstreamUnavailable(ApiError):
    """Record mode: the upstream could not be reached, timed out or did not speak HTTP."""

    status = 502
    default_code = "UPSTREAM_UNAVAILABLE"


class ClientAborted(MockError):
    """The client went away (or its connection broke) before its request was read whole.

    Never an error of the mock: the journal records it with outcome `aborted`.
    """


@dataclass
class ScenarioIssue:
    """One problem in a scenario file, located by line and column (1-based).

    `file` names another file the scenario reads (a contracts folder's), when not the
    scenario file itself.
    """

    message: str
    line: int | None = None
    column: int | None = None
    path: str = ""
    file: str | None = None

    def render(self, filename: str) -> str:
        """`file:line:col: message (at /pointer)` (line and column omitted when unknown)."""
        where = self.file or filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        at = f" (at {self.path})" if self.path else ""
        return f"{where}: {self.message}{at}"


@dataclass
class ScenarioError(MockError):
    """A scenario that cannot be loaded; nothing of it is applied."""

    filename: str
    issues: list[ScenarioIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        """Every issue on its own line, with file, line and column."""
        return "\n".join(i.render(self.filename) for i in self.issues) or self.filename

    def __str__(self) -> str:
        return self.render()


class RecordingError(ScenarioError):
    """A recording that cannot be loaded (PROTOCOL §9); nothing of it is used."""


class ConfigError(MockError, ValueError):
    """A setting from a flag, a `VESANOR_MOCK_*` variable or an ini key that cannot be used."""
