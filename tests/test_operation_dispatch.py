"""/api/v1 requests are dispatched by a precompiled table that agrees with the router."""

from __future__ import annotations

import functools

import pytest
from starlette.routing import BaseRoute, Match, Route

from vesanor_mock.http.api import API_PREFIX, OPERATION_TABLE, OPERATIONS
from vesanor_mock.http.app import create_app
from vesanor_mock.server import MockServer

from .apiclient import Api

PATHS = [
    "/api/v1/replay/sessions",
    "/api/v1/replay/sessions/",
    "/api/v1/replay/sessions/sess_1",
    "/api/v1/replay/sessions/sess_1/",
    "/api/v1/replay/sessions//preflight",
    "/api/v1/replay/sessions/sess_1/preflight",
    "/api/v1/replay/sessions/sess_1/tool-filter",
    "/api/v1/replay/sessions/sess_1/report-bypass",
    "/api/v1/replay/sessions/sess_1/unknown",
    "/api/v1/replay/sessions/sess_1/kill/extra",
    "/api/v1/replay/workflows/wf_1",
    "/api/v1/replay/workflows/wf_1/kill",
    "/api/v1/replay/workflows/wf_1/handoffs/ho_1/complete",
    "/api/v1/replay/workflows/wf_1/handoffs/ho_1/reclaim",
    "/api/v1/replay/workflows/wf_1/handoffs//complete",
    "/api/v1/governance/plan",
    "/api/v1/governance/plan/",
    "/api/v1",
    "/api/v1/",
    "/api/v2/replay/sessions",
    "/_mock/health",
]


@functools.cache
def _api_routes() -> list[BaseRoute]:
    return list(create_app().router.routes)


def _router_match(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """What Starlette's router would call for this request: a full match only."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in _api_routes():
        if isinstance(route, Route) and route.path.startswith(API_PREFIX):
            matched, child = route.matches(scope)
            if matched is Match.FULL:
                return route.name, dict(child["path_params"])
    return None


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", PATHS)
def test_the_operation_table_finds_what_the_router_would_and_nothing_else(
    method: str, path: str
) -> None:
    found = OPERATION_TABLE.match(method, path)
    got = None if found is None else (found[0].name, found[1])
    assert got == _router_match(method, path)


def test_every_operation_is_in_the_table_with_its_parameters() -> None:
    for op in OPERATIONS:
        path = API_PREFIX + op.path.format(sid="s", wid="w", hid="h")
        found = OPERATION_TABLE.match(op.method, path)
        assert found is not None and found[0] is op
        expected = {k: v for k, v in {"sid": "s", "wid": "w", "hid": "h"}.items() if k in op.path}
        assert found[1] == expected


def test_a_bug_escaping_a_dispatched_operation_is_the_500_envelope_with_a_request_id(
    server: MockServer, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug outside the exchange")

    monkeypatch.setattr(server.service, "handle", broken)
    answer = api.http.get(
        f"{server.url}/api/v1/replay/sessions/s", headers={"Authorization": f"Bearer {api.key}"}
    )
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["code"] == "INTERNAL_ERROR" and error["request_id"].startswith("req_")
    assert answer.headers["X-Request-Id"] == error["request_id"]
    assert any("ZeroDivisionError" in text for text in server.service.server_errors)
    server.service.server_errors.clear()
