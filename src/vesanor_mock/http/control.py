"""The control API under /_mock (PROTOCOL.md §6): health, reset, scenario, state, journal,
verify, clock, run-time rules and export; plus GET /openapi.json.

Every answer is JSON with an `X-Request-Id` from the control counter (`req_ctl_…`), so
control calls never shift the ids or journals of the API.

Who may call it (PROTOCOL.md §6.1), checked before anything is read: with
`Settings.control_token` set, every /_mock route needs `Authorization: Bearer <control
token>`; without one, only loopback peers (403 CONTROL_FORBIDDEN otherwise). A request
with an `Origin` other than the server's own is 403 (a web page elsewhere cannot drive
the mock), and a write with a body needs a JSON or YAML `Content-Type` (415), so no
cross-site "simple" request (text/plain, form) can reach a handler.
"""

from __future__ import annotations

import hmac
import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..clock import ClockRangeError
from ..config import is_loopback
from ..domain.expect import verify
from ..domain.nearmiss import rules_view
from ..errors import (
    ApiError,
    ClientAborted,
    FieldError,
    Forbidden,
    InternalError,
    NotFound,
    ScenarioError,
    Unprocessable,
    UnsupportedMediaType,
    ValidationFailed,
)
from ..journal_lines import export_header
from ..openapi import build_openapi
from ..scenarios import MAX_BYTES, dump_scenario
from ..scenarios.export import export_view
from ..scenarios.files import bundled_scenarios, find_bundled
from ..scenarios.spec import build_expectations, build_rules
from .accesslog import log_control
from .edge import (
    JSON_TYPE,
    bearer_token,
    check_media_type,
    error_response,
    json_response,
    parse_json,
    read_body,
    require_object,
    unauthorized,
)
from .faults import DropConnection
from .views import (
    coverage_view,
    findings_query,
    findings_view,
    journal_query,
    journal_view,
    state_view,
)

if TYPE_CHECKING:
    from .app import MockService

log = logging.getLogger("vesanor_mock")
CONTROL_PREFIX = "/_mock"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
POSTED_SCENARIO = "<POST /_mock/scenario>"

Result = tuple[int, Any] | Response
"""A handler's answer: a status and a JSON payload, or a ready response (YAML export)."""
Handler = Callable[["MockService", Request], Awaitable[Result]]


def control_routes(service: MockService) -> list[Route]:
    """Every /_mock route, and /openapi.json."""
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/health", health),
        ("POST", "/reset", reset),
        ("POST", "/scenario", scenario),
        ("GET", "/scenarios", scenarios),
        ("GET", "/state", state),
        ("GET", "/journal", journal),
        ("POST", "/verify", verify_run),
        ("GET", "/findings", findings),
        ("GET", "/coverage", coverage),
        ("DELETE", "/coverage", clear_coverage),
        ("GET", "/clock", clock),
        ("POST", "/clock/advance", clock_advance),
        ("GET", "/rules", list_rules),
        ("POST", "/rules", add_rules),
        ("DELETE", "/rules", delete_rules),
        ("GET", "/export", export),
    ]
    routes = [
        Route(CONTROL_PREFIX + path, _endpoint(service, handler, guarded=True), methods=[method])
        for method, path, handler in table
    ]
    routes.append(Route("/openapi.json", _endpoint(service, openapi, guarded=False)))
    return routes


def _endpoint(
    service: MockService, handler: Handler, guarded: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        """Token, handler, JSON answer; errors in the envelope."""
        request_id = service.control_request_id()
        try:
            if guarded:
                check_access(service, request)
            result = await handler(service, request)
            if isinstance(result, Response):
                result.headers["X-Request-Id"] = request_id
                return result
            status, payload = result
            return json_response(status, payload, request_id)
        except ApiError as error:
            return error_response(error, request_id)
        except ClientAborted:  # the client went away mid-body: nothing was done
            return DropConnection(quiet=True)
        except Exception:  # a bug in the mock: answer the envelope and make the test fail
            text = traceback.format_exc()
            service.record_server_error(text)
            log.error("internal error on %s %s\n%s", request.method, request.url.path, text)
            return error_response(InternalError("internal error in vesanor-mock"), request_id)

    endpoint.__name__ = handler.__name__
    return endpoint


TOKEN_HOWTO = (
    "start the mock with --control-token TOKEN (or VESANOR_MOCK_CONTROL_TOKEN=TOKEN) and "
    "send Authorization: Bearer TOKEN"
)
WRITE_TYPES = (JSON_TYPE, *YAML_TYPES)


def check_access(service: MockService, request: Request) -> None:
    """Who may use the control API (PROTOCOL.md §6.1); raises the refusal.

    Peer (or token), origin, then the media type of a write.
    """
    token = service.settings.control_token
    if token is None:
        peer = request.client.host if request.client else None
        if peer is None or not is_loopback(peer):
            raise Forbidden(
                f"the control API without a control token answers only this machine "
                f"(loopback), not {peer}: to use it from another machine, {TOKEN_HOWTO}",
                details={"peer": peer},
            )
    else:
        _check_token(token, request)
    _check_origin(request, token)
    _check_write_media(request)


def _check_origin(request: Request, token: str | None) -> None:
    """403 for an `Origin` that is not the server's own (a page elsewhere in a browser).

    The server's own origin is the scheme and `Host` of the request. Without a token, that
    host must also be a loopback name or address: a page whose DNS name was pointed at
    127.0.0.1 (DNS rebinding) is same-origin with itself, but not with the mock.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    own = f"{request.url.scheme}://{host}"
    if origin.lower() != own.lower() or (token is None and not is_loopback(_hostname(host))):
        raise Forbidden(
            f"a control request from a web page at {origin!r} is refused: only the mock's own "
            f"origin ({own}) may use the control API",
            details={"origin": origin},
        )


def _hostname(host: str) -> str:
    """The name or address of a `Host` header, without its port (`[::1]:80` is `::1`)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _check_write_media(request: Request) -> None:
    """415 for a POST or DELETE with a body whose `Content-Type` is not JSON or YAML."""
    if request.method not in ("POST", "DELETE"):
        return
    length = request.headers.get("content-length")
    chunked = "transfer-encoding" in request.headers
    if not chunked and (length is None or length.strip() == "0"):
        return
    content_type = request.headers.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in WRITE_TYPES:
        shown = repr(content_type) if content_type else "none"
        raise UnsupportedMediaType(
            f"a control request with a body needs a JSON or YAML Content-Type, got {shown}",
            details={"content_type": content_type, "expected": list(WRITE_TYPES)},
        )


def _check_token(expected: str | None, request: Request) -> None:
    """401 unless the control token is unset or given as a bearer token."""
    if expected is None:
        return
    given = bearer_token(request)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise unauthorized("the control API needs Authorization: Bearer <control token>")


def _body_timeout(request: Request) -> float:
    """`serve --body-timeout-s`: how long a control request's body may take to arrive."""
    settings = request.app.state.service.settings
    return float(settings.body_timeout_s)


async def _json_body(request: Request, *, optional: bool = False) -> dict[str, Any] | None:
    """A JSON object body (None when empty and `optional`)."""
    check_media_type(request)
    raw = await read_body(request, MAX_BYTES, _body_timeout(request))
    if optional and not raw:
        return None
    return require_object(parse_json(raw))


def _validated(service: MockService, schema: str, body: Any) -> None:
    errors = service.registry.validate(schema, body)
    if errors:
        raise ValidationFailed(errors)


def _problems(prefix: str, problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ValidationFailed(
            [FieldError(prefix + path, msg, "semantic") for path, msg in problems]
        )


# -- handlers -------------------------------------------------------------------------------


async def health(service: MockService, request: Request) -> Result:
    """GET /_mock/health: `degraded`, with the error, while the last reload failed."""
    name = service.scenario.name if service.scenario else None
    failed = service.reload_error
    if failed is not None:
        return 200, {"status": "degraded", "scenario": name, "error": failed}
    return 200, {"status": "ok", "scenario": name}


async def scenarios(service: MockService, request: Request) -> Result:
    """GET /_mock/scenarios: the bundled scenarios, loadable by name."""
    return 200, {"scenarios": bundled_scenarios()}


async def reset(service: MockService, request: Request) -> Result:
    """POST /_mock/reset: back to the loaded scenario's initial state."""
    service.reset()
    name = service.scenario.name if service.scenario else None
    log_control(
        "reset",
        f"back to the initial state of scenario {name or '(none)'}; "
        "API request ids restart at req_000001",
        scenario=name,
    )
    return 200, {"ok": True, "scenario": name, "clock": service.world.clock.snapshot()}


async def scenario(service: MockService, request: Request) -> Result:
    """POST /_mock/scenario[?base_dir=DIR]: load a YAML or JSON scenario, replacing all state.

    `contracts_dir` and `extends` paths are relative to `base_dir` (default: the server's
    working folder). `?name=NAME`, or the JSON body `{"name": NAME}`, loads a bundled one.
    """
    content_type = request.headers.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and media not in (*YAML_TYPES, JSON_TYPE):
        raise UnsupportedMediaType(
            f"expected a YAML or JSON body, got Content-Type {content_type!r}",
            details={"content_type": content_type, "expected": [*YAML_TYPES, JSON_TYPE]},
        )
    raw = await read_body(request, MAX_BYTES, _body_timeout(request))
    name = request.query_params.get("name")
    if name is None and media in ("", JSON_TYPE):
        name = _bundled_name(raw)
    try:
        if name is not None:
            loaded = service.load_path(_bundled(name))
        else:
            loaded = service.load_text(raw, POSTED_SCENARIO, request.query_params.get("base_dir"))
    except ScenarioError as error:
        raise _invalid(error) from None
    spec = loaded.spec
    log_control(
        "scenario",
        f"loaded scenario {loaded.name} ({loaded.source}); all state replaced, "
        "API request ids restart at req_000001",
        scenario=loaded.name,
    )
    return 200, {
        "ok": True,
        "scenario": loaded.name,
        "description": loaded.description,
        "tenants": spec.tenants,
        "plans": len(spec.plans),
        "sessions": len(spec.sessions),
        "rules": len(spec.rules),
        "expect": len(spec.expect),
        "warnings": _issues(loaded.warnings, loaded.source),
    }


def _bundled_name(raw: bytes) -> str | None:
    """The name of a `{"name": ...}` JSON body (None for any other body: a scenario)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if isinstance(body, dict) and "name" in body:
        if set(body) != {"name"} or not isinstance(body["name"], str):
            error = FieldError("", 'expected {"name": "<bundled scenario>"} alone', "semantic")
            raise ValidationFailed([error])
        return body["name"]
    return None


def _bundled(name: str) -> str:
    """The file of a bundled scenario; 404 NOT_FOUND listing the names otherwise."""
    try:
        return str(find_bundled(name))
    except ScenarioError as error:
        names = [item["name"] for item in bundled_scenarios()]
        raise NotFound(error.issues[0].message, details={"name": name, "bundled": names}) from None


def _issues(issues: Any, filename: str) -> list[dict[str, Any]]:
    return [
        {
            "file": issue.file or filename,
            "line": issue.line,
            "column": issue.column,
            "path": issue.path,
            "message": issue.message,
        }
        for issue in issues
    ]


def _invalid(error: ScenarioError) -> Unprocessable:
    """422 SCENARIO_INVALID with every issue, located."""
    issues = _issues(error.issues, error.filename)
    return Unprocessable(error.render(), code="SCENARIO_INVALID", details={"issues": issues})


async def state(service: MockService, request: Request) -> Result:
    """GET /_mock/state: everything the world holds."""
    return 200, state_view(service.world, service.scenario)


async def journal(service: MockService, request: Request) -> Result:
    """GET /_mock/journal?endpoint=&session_id=&status=&since=&outcome=&rule=&tail=
    &digest=&bodies=."""
    filters, view = journal_query(dict(request.query_params))
    world = service.world
    return 200, journal_view(world, world.journal.entries(**filters), view)


async def verify_run(service: MockService, request: Request) -> Result:
    """POST /_mock/verify: the scenario's expectations, or the body's, against the journal."""
    body = await _json_body(request, optional=True)
    expectations = list(service.spec.expect)
    if body is not None:
        _validated(service, "control/verify_request", body)
    if body is not None and "expect" in body:
        expectations, problems = build_expectations(body["expect"])
        _problems("/expect", problems)
    journal = service.world.journal
    failures = verify(expectations, journal.entries(), journal.total - len(journal))
    answer: dict[str, Any] = {
        "ok": not failures,
        "checked": len(expectations),
        "failures": failures,
    }
    if body is None or body.get("findings", "on") == "on":
        found = findings_view(service.world)["findings"]
        answer["findings"] = found
        answer["ok"] = answer["ok"] and not any(f["severity"] == "error" for f in found)
    return 200, answer


async def findings(service: MockService, request: Request) -> Result:
    """GET /_mock/findings?session_id=&severity=: what the client did wrong (§7.1)."""
    filters = findings_query(dict(request.query_params))
    return 200, findings_view(service.world, **filters)


async def coverage(service: MockService, request: Request) -> Result:
    """GET /_mock/coverage: the situations the client met, over the server's life (§7.2)."""
    _no_query(request)
    return 200, coverage_view(service)


async def clear_coverage(service: MockService, request: Request) -> Result:
    """DELETE /_mock/coverage: forget what was seen; answers the cleared report."""
    _no_query(request)
    service.coverage.clear()
    return 200, coverage_view(service)


def _no_query(request: Request) -> None:
    """422 for any query parameter (the route takes none)."""
    errors = [
        FieldError(f"/{name}", f"unknown query parameter {name!r}", "additionalProperties")
        for name in request.query_params
    ]
    if errors:
        raise ValidationFailed(errors)


async def clock(service: MockService, request: Request) -> Result:
    """GET /_mock/clock."""
    return 200, service.world.clock.snapshot()


async def clock_advance(service: MockService, request: Request) -> Result:
    """POST /_mock/clock/advance {"seconds"}."""
    body = await _json_body(request)
    _validated(service, "control/clock_advance_request", body)
    assert body is not None
    try:
        service.world.clock.advance(float(body["seconds"]))
    except ClockRangeError as exc:
        raise ValidationFailed([FieldError("/seconds", str(exc), "maximum")]) from None
    now = service.world.clock.now_iso()
    log_control("clock", f"advanced {body['seconds']} s to {now}", seconds=body["seconds"])
    service.changed()
    return 200, service.world.clock.snapshot()


async def list_rules(service: MockService, request: Request) -> Result:
    """GET /_mock/rules: every rule, its counts, and for one that never fired its near misses."""
    return 200, {"rules": rules_view(service.world)}


async def add_rules(service: MockService, request: Request) -> Result:
    """POST /_mock/rules {"rules": [...]}: checked like a scenario's, added after them."""
    body = await _json_body(request)
    _validated(service, "control/rules_request", body)
    assert body is not None
    world = service.world
    present = world.rules.rules
    rules, problems = build_rules(
        body["rules"], world.spec.tenants, [r.id for r in present], offset=len(present)
    )
    _problems("/rules", problems)
    world.rules.add(rules)
    ids = [rule.id for rule in rules]
    log_control("rules", f"added run-time rule(s) {', '.join(ids)}", added=ids)
    service.changed()
    return 200, {"rules": _rule_list(service)}


async def delete_rules(service: MockService, request: Request) -> Result:
    """DELETE /_mock/rules: remove the rules added at run time."""
    removed = service.world.rules.clear_added()
    log_control("rules", f"removed {removed} run-time rule(s)", removed=removed)
    service.changed()
    return 200, {"rules": _rule_list(service), "removed": removed}


def _rule_list(service: MockService) -> list[dict[str, str]]:
    return [
        {"id": rule.id, "source": source} for rule, source, _, _ in service.world.rules.counts()
    ]


async def export(service: MockService, request: Request) -> Result:
    """GET /_mock/export[?format=json|yaml]: the loaded world and the journal as a scenario
    that replays the run; `yaml` is the file `vesanor-mock export` writes, header included."""
    unknown = [name for name in request.query_params if name != "format"]
    form = request.query_params.get("format", "json")
    errors = [
        FieldError(f"/{name}", f"unknown query parameter {name!r}", "additionalProperties")
        for name in unknown
    ]
    if form not in ("json", "yaml"):
        errors.append(FieldError("/format", f"expected 'json' or 'yaml', got {form!r}", "enum"))
    if errors:
        raise ValidationFailed(errors)
    source = service.scenario.source if service.scenario else None
    answer = export_view(service.world, source)
    if form == "json":
        return 200, answer
    journal = [entry.to_dict() for entry in service.world.journal.entries()]
    url = str(request.base_url).rstrip("/")
    text = dump_scenario(answer["scenario"], export_header(url, answer, journal))
    return Response(
        text,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vesanor-mock-export.yaml"'},
    )


async def openapi(service: MockService, request: Request) -> Result:
    """GET /openapi.json: the OpenAPI 3.1 document of /api/v1, built from the schemas."""
    return 200, build_openapi(service.registry)
