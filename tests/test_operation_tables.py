"""The served routes and the OpenAPI document describe the same operations."""

from __future__ import annotations

from vesanor_mock import openapi
from vesanor_mock.http import api


def test_every_served_operation_is_documented_with_the_same_method_path_and_query() -> None:
    served = {
        op.name: (op.method.lower(), api.API_PREFIX + op.path, {q.name for q in op.query})
        for op in api.OPERATIONS
    }
    documented = {
        op.endpoint: (op.method.lower(), op.path, set(op.query)) for op in openapi.OPERATIONS
    }
    assert served == documented
