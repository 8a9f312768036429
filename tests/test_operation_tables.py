"""The served routes and the OpenAPI document describe the same operations."""

from __future__ import annotations

from starlette.routing import Route

from vesanor_mock import openapi
from vesanor_mock.http import api
from vesanor_mock.http.app import create_app
from vesanor_mock.openapi import FINDINGS_FILTERS, JOURNAL_FILTERS, JOURNAL_VIEW


def test_every_served_operation_is_documented_with_the_same_method_path_and_query() -> None:
    served = {
        op.name: (op.method.lower(), api.API_PREFIX + op.path, {q.name for q in op.query})
        for op in api.OPERATIONS
    }
    documented = {
        op.endpoint: (op.method.lower(), op.path, set(op.query)) for op in openapi.OPERATIONS
    }
    assert served == documented


def test_every_served_control_route_is_documented_with_the_same_method_and_path() -> None:
    served = {
        (method, route.path)
        for route in create_app().routes
        if isinstance(route, Route) and route.path.startswith(openapi.CONTROL_PREFIX + "/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (op.method.upper(), openapi.CONTROL_PREFIX + op.path) for op in openapi.CONTROL_OPERATIONS
    }
    assert served == documented


def test_the_control_filters_are_documented_as_the_query_of_their_operations() -> None:
    query = {op.path: set(op.query) for op in openapi.CONTROL_OPERATIONS}
    assert query["/journal"] == {*JOURNAL_FILTERS, *JOURNAL_VIEW}
    assert query["/findings"] == set(FINDINGS_FILTERS)
