"""Build the OpenAPI 3.1 document from the JSON Schemas: the `/api/v1` operations and the
control API under `/_mock` (PROTOCOL §6), each from one table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .domain.checker import SEVERITIES
from .domain.journal import OUTCOMES
from .schemas import ENDPOINTS, SchemaRegistry, component_name

Doc = dict[str, Any]

SCHEMAS = "#/components/schemas/"
BODY_ERRORS = (400, 413, 415, 422)

ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("MalformedJson", "The body is not valid JSON: MALFORMED_JSON."),
    401: ("Unauthorized", "Missing, malformed or unknown bearer key: UNAUTHORIZED."),
    404: (
        "NotFound",
        "No such resource for this tenant: SESSION_NOT_FOUND, WORKFLOW_NOT_FOUND, "
        "PREPARED_REQUEST_NOT_FOUND, PENDING_CALL_NOT_FOUND, HANDOFF_NOT_FOUND.",
    ),
    409: (
        "Conflict",
        "A protocol or authority violation: STALE_STATE_VERSION, FENCE_MISMATCH, "
        "LEASE_EXPIRED, PREPARED_REQUEST_CONSUMED, PREPARED_REQUEST_EXPIRED, SESSION_KILLED, "
        "SESSION_COMPROMISED, PENDING_CALLS_UNRESOLVED, RECEIPT_CONFLICT, "
        "SESSION_EXISTS_MISMATCH, WORKFLOW_EXISTS, WORKFLOW_KILLED, NOT_IN_WORKFLOW, "
        "HANDOFF_STATE_CONFLICT, HANDOFF_NOT_RECLAIMABLE, RESOURCE_CONFLICT.",
    ),
    413: ("PayloadTooLarge", "The body is over the size limit: PAYLOAD_TOO_LARGE."),
    415: ("UnsupportedMediaType", "The body is not JSON: UNSUPPORTED_MEDIA_TYPE."),
    422: (
        "Unprocessable",
        "Well-formed but unusable: VALIDATION_FAILED (details.errors), COMPILE_ERROR, "
        "UNKNOWN_ROLE, HANDOFF_NOT_ALLOWED, APPROVED_ARTIFACT_INVALID.",
    ),
}
"""Each error status: its components/responses name and what it means."""


JOURNAL_FILTERS = ("endpoint", "session_id", "status", "since", "outcome", "rule", "limit", "tail")
"""The query parameters that choose journal entries (`GET /_mock/journal`)."""
JOURNAL_VIEW = ("digest", "bodies")
"""How entries are shown: `digest=true` adds each entry's digest, `bodies=false` leaves the
request and response bodies out (the dashboard and `vesanor-mock journal` ask for both)."""
FINDINGS_FILTERS = ("session_id", "severity")
"""The query parameters of `GET /_mock/findings`."""


@dataclass(frozen=True)
class Operation:
    """One `/api/v1` operation: where it lives and which statuses it can answer."""

    endpoint: str
    method: str
    path: str
    summary: str
    tag: str
    success: tuple[int, ...] = (200,)
    errors: tuple[int, ...] = (401, 404, 409, *BODY_ERRORS)
    query: tuple[str, ...] = ()
    semantic: tuple[str, ...] = ()
    """422 codes a request can get although its body and query pass their schemas."""
    operation_id: str = ""
    """The operationId (a method name for generated clients); the endpoint name if empty."""

    @property
    def op_id(self) -> str:
        """The operationId: a verb phrase a generated client can use as a method name."""
        return self.operation_id or self.endpoint

    @property
    def path_params(self) -> tuple[str, ...]:
        """The `{name}` parameters of the path, in order."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))


SESSION = "/api/v1/replay/sessions/{sid}"
WORKFLOW = "/api/v1/replay/workflows/{wid}"
HANDOFF = WORKFLOW + "/handoffs/{hid}"
NO_CONFLICT = (401, 404, *BODY_ERRORS)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "create_session",
        "post",
        "/api/v1/replay/sessions",
        "Create (or join) a session",
        "sessions",
        success=(201, 200),
        semantic=("COMPILE_ERROR", "UNKNOWN_ROLE", "VALIDATION_FAILED"),
    ),
    Operation(
        "get_session",
        "get",
        SESSION,
        "Load a session",
        "sessions",
        errors=(401, 404, 422),
        query=("include",),
    ),
    Operation(
        "preflight",
        "post",
        SESSION + "/preflight",
        "Preflight a model call",
        "enforcement",
        semantic=("VALIDATION_FAILED",),
    ),
    Operation(
        "proposals",
        "post",
        SESSION + "/proposals",
        "Judge proposed tool calls",
        "enforcement",
        semantic=("VALIDATION_FAILED",),
        operation_id="propose",
    ),
    Operation(
        "receipts",
        "post",
        SESSION + "/receipts",
        "Report a tool call's outcome",
        "enforcement",
        operation_id="submit_receipt",
    ),
    Operation(
        "labels",
        "post",
        SESSION + "/labels",
        "Append a label",
        "controls",
        success=(201,),
        errors=NO_CONFLICT,
        operation_id="append_label",
    ),
    Operation(
        "tool_filter",
        "post",
        SESSION + "/tool-filter",
        "Replace the tool filter",
        "controls",
        operation_id="replace_tool_filter",
    ),
    Operation("report_bypass", "post", SESSION + "/report-bypass", "Report a bypass", "controls"),
    Operation(
        "kill",
        "post",
        SESSION + "/kill",
        "Kill a session",
        "controls",
        errors=NO_CONFLICT,
        operation_id="kill_session",
    ),
    Operation(
        "recover",
        "post",
        SESSION + "/recover",
        "Rotate the lease",
        "controls",
        operation_id="recover_session",
    ),
    Operation(
        "offer_handoff",
        "post",
        SESSION + "/handoffs",
        "Offer a handoff",
        "workflows",
        success=(201,),
        semantic=("HANDOFF_NOT_ALLOWED",),
    ),
    Operation(
        "get_workflow", "get", WORKFLOW, "Load a workflow", "workflows", errors=(401, 404, 422)
    ),
    Operation("complete_handoff", "post", HANDOFF + "/complete", "Complete a handoff", "workflows"),
    Operation("reclaim_handoff", "post", HANDOFF + "/reclaim", "Reclaim a handoff", "workflows"),
    Operation(
        "kill_workflow",
        "post",
        WORKFLOW + "/kill",
        "Kill a workflow and its sessions",
        "workflows",
        errors=NO_CONFLICT,
    ),
    Operation(
        "governance_plan",
        "get",
        "/api/v1/governance/plan",
        "Look up an agent's plan",
        "governance",
        errors=(401, 422),
        query=("agent", "environment"),
        semantic=("APPROVED_ARTIFACT_INVALID",),
        operation_id="get_governance_plan",
    ),
)
"""Every operation of PROTOCOL.md §3, in the order the protocol lists them."""

TAGS: dict[str, str] = {
    "sessions": "Create, join and load sessions.",
    "enforcement": "The governed cycle: preflight, proposals, receipts.",
    "controls": "Labels, tool filters, bypass reports, kill and lease recovery of a session.",
    "workflows": "Workflows and their handoffs.",
    "governance": "Governance plans.",
}
"""Every tag, in the order generators list their modules; each operation has one."""

LINKS: dict[str, dict[str, str]] = {
    "create_session": {"sid": "$response.body#/session/session_id"},
    "offer_handoff": {
        "wid": "$response.body#/handoff/workflow_id",
        "hid": "$response.body#/handoff/handoff_id",
    },
}
"""The path ids an operation's answer supplies, as OpenAPI runtime expressions."""

CONTROL_PREFIX = "/_mock"
CONTROL_TAG = "mock"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


@dataclass(frozen=True)
class ControlOperation:
    """One operation of the control API: its route, its bodies and its refusals.

    `request` and `response` name schemas (`control/...`, or `scenario`); `request_required`
    says whether a body must be sent; `yaml` says the body may also be YAML. `media` is the
    answer's media type: any other than JSON answers text, and `response` is then empty.
    `errors` lists the statuses beyond the 401 and 403 every guarded operation can answer,
    with `error_schemas` for those whose body is not the error envelope; an `open` operation
    needs no token (the dashboard's static files). `note` is the operation's description.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    response: str
    request: str = ""
    request_required: bool = False
    yaml: bool = False
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    error_schemas: tuple[tuple[int, str], ...] = ()
    media: str = "application/json"
    open: bool = False
    note: str = ""

    @property
    def path_params(self) -> tuple[str, ...]:
        """The `{name}` parameters of the path, in order."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))


BODY = (400, 413, 415, 422)
CONTROL_OPERATIONS: tuple[ControlOperation, ...] = (
    ControlOperation("get", "/health", "get_health", "Is the mock up", "control/health"),
    ControlOperation(
        "post", "/reset", "reset", "Back to the scenario's initial state", "control/reset"
    ),
    ControlOperation(
        "post",
        "/scenario",
        "load_scenario",
        "Load a scenario, replacing all state",
        "control/scenario",
        request="scenario",
        yaml=True,
        query=("base_dir", "scenario_name"),
        errors=(404, 413, 415, 422),
        error_schemas=((422, "control/scenario_error"),),
        note="The body is a scenario (YAML or JSON). `?name=NAME`, or the JSON body "
        '`{"name": NAME}`, loads a bundled scenario instead (404 NOT_FOUND lists the names). '
        "The answer's `warnings` name rules that mention what nothing in the scenario defines.",
    ),
    ControlOperation(
        "get", "/scenarios", "list_scenarios", "The bundled scenarios", "control/scenarios"
    ),
    ControlOperation("get", "/state", "get_state", "Everything the world holds", "control/state"),
    ControlOperation(
        "get",
        "/journal",
        "get_journal",
        "The journaled requests, oldest first",
        "control/journal",
        query=(*JOURNAL_FILTERS, *JOURNAL_VIEW),
        errors=(422,),
    ),
    ControlOperation(
        "post",
        "/verify",
        "verify",
        "Check expectations and findings against the journal",
        "control/verify",
        request="control/verify_request",
        errors=BODY,
    ),
    ControlOperation(
        "get",
        "/findings",
        "get_findings",
        "What the client did wrong",
        "control/findings",
        query=FINDINGS_FILTERS,
        errors=(422,),
    ),
    ControlOperation(
        "get",
        "/coverage",
        "get_coverage",
        "The situations the client met",
        "control/coverage",
        errors=(422,),
    ),
    ControlOperation(
        "delete",
        "/coverage",
        "clear_coverage",
        "Forget the situations seen",
        "control/coverage",
        errors=(422,),
    ),
    ControlOperation("get", "/clock", "get_clock", "The virtual clock", "control/clock"),
    ControlOperation(
        "post",
        "/clock/advance",
        "advance_clock",
        "Move the virtual clock forward",
        "control/clock",
        request="control/clock_advance_request",
        request_required=True,
        errors=BODY,
    ),
    ControlOperation(
        "post",
        "/rules",
        "add_rules",
        "Add rules after the scenario's",
        "control/rules",
        request="control/rules_request",
        request_required=True,
        errors=BODY,
    ),
    ControlOperation(
        "get",
        "/rules",
        "get_rules",
        "Every rule with its counts and near misses",
        "control/rules_view",
        note="For a rule that never fired, `near_misses` lists up to 3 journaled requests that "
        "came closest, each with the conditions of its `when` it failed.",
    ),
    ControlOperation(
        "delete", "/rules", "delete_rules", "Remove the rules added at run time", "control/rules"
    ),
    ControlOperation(
        "get",
        "/export",
        "export",
        "The run as a scenario that replays it",
        "control/export",
        query=("format",),
        errors=(422,),
        note="`format=yaml` answers the scenario file `vesanor-mock export` writes, as "
        "application/yaml (not listed: generators read YAML answers as binary).",
    ),
    ControlOperation(
        "get", "/ui", "get_dashboard", "The dashboard page", "", media="text/html", open=True
    ),
    ControlOperation(
        "get",
        "/ui/{name}",
        "get_dashboard_file",
        "A file of the dashboard (index.html, app.js, style.css)",
        "",
        media="text/plain",
        open=True,
        errors=(404,),
        note="Answered with the file's own media type: text/html, text/javascript, text/css.",
    ),
    ControlOperation(
        "get",
        "/stream",
        "stream_changes",
        "Server-Sent Events telling the dashboard what changed",
        "",
        media="text/event-stream",
    ),
)
"""Every `/_mock` operation (PROTOCOL §6, §7); a new control endpoint adds one entry."""

CONTROL_ERRORS: dict[int, tuple[str, str]] = {
    400: ("MockMalformedJson", "The body is not valid JSON: MALFORMED_JSON."),
    401: (
        "MockUnauthorized",
        "A control token is configured and the request does not carry it: UNAUTHORIZED.",
    ),
    403: (
        "MockForbidden",
        "No control token is configured and the peer is not on loopback, or the Origin is "
        "another site's: CONTROL_FORBIDDEN.",
    ),
    404: ("MockNotFound", "No such file: NOT_FOUND."),
    413: ("MockPayloadTooLarge", "The body is over the size limit: PAYLOAD_TOO_LARGE."),
    415: ("MockUnsupportedMediaType", "The body's media type is refused: UNSUPPORTED_MEDIA_TYPE."),
    422: (
        "MockUnprocessable",
        "The body or the query does not fit: VALIDATION_FAILED (details.errors).",
    ),
}
"""Each error status of the control API: its components/responses name and meaning."""


def build_openapi(registry: SchemaRegistry) -> Doc:
    """The OpenAPI 3.1 document: every `/api/v1` operation, its bodies and its answers."""
    paths: dict[str, dict[str, Doc]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, registry)
    for control in CONTROL_OPERATIONS:
        path = CONTROL_PREFIX + control.path
        paths.setdefault(path, {})[control.method] = _control_operation(control, registry)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Vesanor Runtime API (vesanor-mock)",
            "version": _version(),
            "description": "The wire contract the mock implements, and the mock's own control "
            "API under /_mock (tag mock); see docs/.",
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name, "description": text} for name, text in _tags().items()],
        "paths": paths,
        "components": _components(registry),
    }
    return _without_aliases(document)


def _without_aliases(document: Doc) -> Doc:
    """The document with every alias component (a bare `$ref`) replaced by its target.

    `responses/error` is the common ErrorEnvelope under another name: generators would make
    two models of one shape (openapi-python-client refuses), so the answers use the target.
    """
    schemas: Doc = document["components"]["schemas"]
    aliases = {
        SCHEMAS + name: schema["$ref"]
        for name, schema in schemas.items()
        if set(schema) - {"title", "description"} == {"$ref"}
    }

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: rewrite(value) for key, value in node.items()}
        while out.get("$ref") in aliases:
            out["$ref"] = aliases[out["$ref"]]
        return out

    for ref in aliases:
        del schemas[ref.removeprefix(SCHEMAS)]
    result: Doc = rewrite(document)
    return result


def _portable(node: Any) -> Any:
    """A copy of a schema with `{"const": true}` written `{"type": "boolean", "enum": [true]}`.

    Both accept exactly `true`; openapi-python-client 0.29 writes code that does not parse
    for a boolean `const`.
    """
    if isinstance(node, list):
        return [_portable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _portable(value) for key, value in node.items()}
    if isinstance(out.get("const"), bool):
        value = out.pop("const")
        out = {"type": "boolean", **out, "enum": [value]}
    return out


def _version() -> str:
    """The installed package version (0.0.0 when run from a bare checkout)."""
    try:
        return metadata.version("vesanor-mock")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _operation(op: Operation, registry: SchemaRegistry) -> Doc:
    """One operation object."""
    doc: Doc = {"operationId": op.op_id, "summary": op.summary, "tags": [op.tag]}
    params = op.path_params + op.query
    if params:
        doc["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in params]
    request = "requests/" + op.endpoint
    if request in registry.names():
        doc["requestBody"] = _request_body(registry, request)
    answer = {
        "description": op.summary + ": success.",
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
        "content": {"application/json": {"schema": _ref("responses/" + op.endpoint)}},
    }
    links = _links(op)
    if links:
        answer["links"] = links
    doc["responses"] = {str(status): answer for status in op.success}
    for status in sorted(op.errors):
        doc["responses"][str(status)] = {
            "$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"
        }
    if op.semantic:
        doc["responses"]["422"] = _semantic_422(op)
    return doc


def _tags() -> dict[str, str]:
    """The API's tags, then the control API's."""
    control = "The mock's control API (PROTOCOL §6): state, scenarios, journal, checks, clock."
    return {**TAGS, CONTROL_TAG: control}


def _control_operation(op: ControlOperation, registry: SchemaRegistry) -> Doc:
    """One control operation: its own tag, the control token, its bodies and refusals."""
    doc: Doc = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [CONTROL_TAG],
        "security": [] if op.open else [{"controlToken": []}, {}],
    }
    if op.note:
        doc["description"] = op.note
    params = op.path_params + op.query
    if params:
        doc["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in params]
    if op.request:
        body = _request_body(registry, op.request)
        body["required"] = op.request_required
        if op.yaml:
            body["description"] = (
                "A JSON body, or the same scenario as YAML with the Content-Type "
                + ", ".join(YAML_TYPES)
                + " (not listed as media types: generators take them for binary uploads)."
            )
        doc["requestBody"] = body
    schema = _ref(op.response) if op.response else {"type": "string"}
    answer = {
        "description": op.summary + ".",
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
        "content": {op.media: {"schema": schema}},
    }
    responses: Doc = {"200": answer}
    special = dict(op.error_schemas)
    guarded = () if op.open else (401, 403)
    for status in sorted({*guarded, *op.errors}):
        if status in special:
            own = _control_error(status)
            own["content"]["application/json"]["schema"] = _ref(special[status])
            responses[str(status)] = own
        else:
            responses[str(status)] = {"$ref": f"#/components/responses/{CONTROL_ERRORS[status][0]}"}
    doc["responses"] = responses
    return doc


def _control_error(status: int) -> Doc:
    """A reusable error answer of the control API."""
    return _error_response(status, CONTROL_ERRORS)


def _request_body(registry: SchemaRegistry, name: str) -> Doc:
    """A JSON request body, with the first `examples` entry of its schema as its example."""
    schema = registry.schema(name)
    media: Doc = {"schema": _ref(name)}
    if schema.get("examples"):
        media["example"] = schema["examples"][0]
    return {"required": bool(schema.get("required")), "content": {"application/json": media}}


def _semantic_422(op: Operation) -> Doc:
    """The 422 answer of an operation that refuses some bodies its schema lets through.

    JSON Schema cannot say that a contract must compile, that a role must be declared or
    that an idempotency key was used before; the `x-semantic-codes` extension lists the
    codes a schema-valid request can still get, so a client (or a fuzzer) knows them.
    """
    answer = _error_response(422)
    codes = ", ".join(op.semantic)
    answer["description"] += f" A request that passes its schema can still get: {codes}."
    answer["x-semantic-codes"] = list(op.semantic)
    return answer


def _links(op: Operation) -> Doc:
    """Links from an answer to every operation whose path ids it supplies."""
    supplies = LINKS.get(op.endpoint, {})
    return {
        component_name(target.op_id): {
            "operationId": target.op_id,
            "parameters": {p: supplies[p] for p in target.path_params},
        }
        for target in OPERATIONS
        if target.path_params and set(target.path_params) <= set(supplies)
    }


def _ref(name: str) -> Doc:
    """A `$ref` to the component of one schema file."""
    return {"$ref": SCHEMAS + component_name(name)}


def _components(registry: SchemaRegistry) -> Doc:
    """Schemas, error responses, headers, parameters and the bearer scheme."""
    return {
        "schemas": _portable(_named(registry.components(_seeds(registry)))),
        "responses": {
            **{name: _error_response(status) for status, (name, _) in ERROR_RESPONSES.items()},
            **{name: _control_error(status) for status, (name, _) in CONTROL_ERRORS.items()},
        },
        "headers": {
            "X-Request-Id": {
                "description": "The request id, also in error.request_id.",
                "required": True,
                "schema": {"type": "string", "pattern": "^req_"},
            },
            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
        },
        "parameters": _parameters(),
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"},
            "controlToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The control token, when one is configured (--control-token, "
                "VESANOR_MOCK_CONTROL_TOKEN). Without one, the control API answers loopback "
                "peers only (PROTOCOL §6.1).",
            },
        },
    }


def _named(schemas: dict[str, Doc]) -> dict[str, Doc]:
    """The components, sorted, each titled with its own name.

    Generators name a model after its schema's `title` before its component name, so a
    prose title ("Preflight a model call (request body)") would become the type name. The
    title is the component name; the prose leads the description instead.
    """
    named: dict[str, Doc] = {}
    for name, schema in sorted(schemas.items()):
        prose = [schema.get("title"), schema.get("description")]
        described = [str(text).rstrip(".") + "." for text in prose if text and text != name]
        rest = {k: v for k, v in schema.items() if k != "title"}
        named[name] = {"title": name, **rest}
        if described:
            named[name]["description"] = " ".join(described)
    return named


def _seeds(registry: SchemaRegistry) -> list[tuple[str, str]]:
    """Every request and response schema and every `$defs` entry of the API's files."""
    seeds: list[tuple[str, str]] = []
    for name in registry.names():
        if name != "common" and not name.startswith(("requests/", "responses/", "control/")):
            continue
        if name != "common":
            seeds.append((name, ""))
        defs = registry.schema(name).get("$defs", {})
        seeds.extend((name, "/$defs/" + key) for key in defs)
    return seeds


def _error_response(status: int, table: dict[int, tuple[str, str]] = ERROR_RESPONSES) -> Doc:
    """A reusable error answer in the envelope, described by `table`."""
    headers: Doc = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if status == 401:
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
    return {
        "description": table[status][1],
        "headers": headers,
        "content": {"application/json": {"schema": _ref("responses/error")}},
    }


def _parameters() -> Doc:
    """Path and query parameters shared by the operations."""

    def path(name: str, what: str) -> Doc:
        schema = {"$ref": SCHEMAS + "SafeId"}
        return {"name": name, "in": "path", "required": True, "description": what, "schema": schema}

    return {
        "sid": path("sid", "Session id."),
        "wid": path("wid", "Workflow id."),
        "hid": path("hid", "Handoff id."),
        "include": {
            "name": "include",
            "in": "query",
            "description": "`pending` adds the session's pending calls.",
            "schema": {"type": "string", "enum": ["pending"]},
        },
        "agent": {
            "name": "agent",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        },
        "environment": {
            "name": "environment",
            "in": "query",
            "description": "Defaults to development.",
            "schema": {"$ref": SCHEMAS + "Environment"},
        },
        **_control_parameters(),
    }


def _control_parameters() -> Doc:
    """Query parameters of the control API (journal and findings filters, base_dir)."""

    def query(name: str, what: str, schema: Doc) -> Doc:
        return {"name": name, "in": "query", "description": what, "schema": schema}

    count = {"type": "integer", "minimum": 0}
    return {
        "base_dir": query(
            "base_dir",
            "The folder a posted scenario's contracts_dir paths are relative to.",
            {"type": "string", "minLength": 1},
        ),
        "scenario_name": query(
            "name",
            "A bundled scenario to load by name (GET /_mock/scenarios lists them).",
            {"type": "string", "minLength": 1},
        ),
        "endpoint": query(
            "endpoint", "Only this endpoint's entries.", {"type": "string", "enum": [*ENDPOINTS]}
        ),
        "session_id": query("session_id", "Only this session's.", {"type": "string"}),
        "status": query("status", "Only answers with this HTTP status.", count),
        "since": query("since", "Only entries after this sequence number.", count),
        "outcome": query(
            "outcome", "Only entries with this outcome.", {"type": "string", "enum": [*OUTCOMES]}
        ),
        "rule": query("rule", "Only entries where this rule fired.", {"type": "string"}),
        "limit": query("limit", "The first N entries that match.", count),
        "tail": query("tail", "The last N entries that match.", count),
        "digest": query("digest", "true adds each entry's digest.", {"type": "boolean"}),
        "bodies": query("bodies", "false leaves the bodies out.", {"type": "boolean"}),
        "severity": query(
            "severity", "Only findings of this severity.", {"type": "string", "enum": [*SEVERITIES]}
        ),
        "format": query(
            "format", "json (the default) or yaml.", {"type": "string", "enum": ["json", "yaml"]}
        ),
        "name": {
            "name": "name",
            "in": "path",
            "required": True,
            "description": "A file name.",
            "schema": {"type": "string", "minLength": 1},
        },
    }
