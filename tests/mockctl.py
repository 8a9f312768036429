"""A small client for the /_mock control API that checks every answer against its schema."""

from __future__ import annotations

from typing import Any

import requests
import yaml

from vesanor_mock.openapi import CONTROL_OPERATIONS
from vesanor_mock.schemas import SchemaRegistry

from .apiclient import ContractViolation

ROUTES = {(op.method.upper(), op.path): op for op in CONTROL_OPERATIONS}
"""Each control route's operation, from the table the OpenAPI document is built from."""


class Control:
    """Calls /_mock/* and validates each answer (success schema, or the error envelope)."""

    def __init__(self, base_url: str, registry: SchemaRegistry, token: str | None = None) -> None:
        self.base_url = base_url
        self.registry = registry
        self.token = token
        self.http = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """One control request; the answer is checked before it is returned."""
        all_headers = dict(headers or {})
        if self.token is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        response = self.http.request(
            method,
            f"{self.base_url}/_mock{path}",
            json=body if data is None else None,
            data=data,
            headers=all_headers,
            params=params,
            timeout=10,
        )
        check_control_answer(self.registry, method, path, response)
        return response

    def load(self, scenario: dict[str, Any] | str) -> dict[str, Any]:
        """Load a scenario (a dict is sent as YAML); fail the test unless it loads."""
        text = scenario if isinstance(scenario, str) else yaml.safe_dump(scenario)
        response = self.call(
            "POST", "/scenario", data=text.encode(), headers={"Content-Type": "application/yaml"}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def journal(self, **filters: str) -> list[dict[str, Any]]:
        """The journal's entries."""
        return list(self.call("GET", "/journal", params=filters).json()["entries"])

    def state(self) -> dict[str, Any]:
        """GET /_mock/state."""
        return dict(self.call("GET", "/state").json())

    def verify(self, expect: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """POST /_mock/verify (no body: the scenario's own expect)."""
        body = None if expect is None else {"expect": expect}
        return dict(self.call("POST", "/verify", body).json())


def check_control_answer(
    registry: SchemaRegistry, method: str, path: str, response: requests.Response
) -> None:
    """Raise ContractViolation unless the answer fits its schema and carries X-Request-Id."""
    request_id = response.headers.get("X-Request-Id", "")
    if not request_id.startswith("req_"):
        raise ContractViolation(f"X-Request-Id missing or malformed: {request_id!r}")
    op = ROUTES.get((method, path))
    if 200 <= response.status_code < 300 and op is not None and not op.response:
        return  # a text answer (the dashboard, the event stream)
    body = response.json()
    if 200 <= response.status_code < 300:
        assert op is not None, f"{method} /_mock{path} is not in the control table"
        name = op.response
    else:
        special = dict(op.error_schemas) if op else {}
        name = special.get(response.status_code, "responses/error")
    problems = registry.validate(name, body)
    if problems:
        raise ContractViolation(f"{method} /_mock{path} answered off-schema: {problems}\n{body}")
    if response.status_code >= 400 and body["error"]["request_id"] != request_id:
        raise ContractViolation("error.request_id differs from X-Request-Id")
