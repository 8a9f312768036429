"""A small test client that checks every answer against its schema and the envelope rules."""

from __future__ import annotations

from typing import Any

import requests

from vesanor_mock.schemas import SchemaRegistry

DEFAULT_KEY = "vsk_test_default"
BASE = "/api/v1"


class ContractViolation(AssertionError):
    """An answer that does not match its schema or the envelope rules."""


class Api:
    """Calls the mock over HTTP; every answer is validated before the test sees it."""

    def __init__(self, base_url: str, registry: SchemaRegistry, key: str = DEFAULT_KEY) -> None:
        self.base_url = base_url
        self.registry = registry
        self.key = key
        self.http = requests.Session()

    def with_key(self, key: str) -> Api:
        """The same client speaking with another API key."""
        return Api(self.base_url, self.registry, key)

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send one request and validate the answer (status, schema, X-Request-Id)."""
        all_headers = {"Authorization": f"Bearer {key or self.key}"}
        if headers:
            all_headers.update(headers)
        response = self.http.request(
            method,
            self.base_url + BASE + path,
            json=body if data is None else None,
            data=data,
            headers=all_headers,
            params=params,
            timeout=10,
        )
        check_answer(self.registry, endpoint, response)
        return response

    # -- one helper per endpoint ---------------------------------------------------------

    def create_session(self, **body: Any) -> requests.Response:
        """POST /replay/sessions."""
        body.setdefault("agent", "refund-bot")
        return self.call("create_session", "POST", "/replay/sessions", body)

    def get_session(self, sid: str, include: str | None = None) -> requests.Response:
        """GET /replay/sessions/{sid}."""
        params = {"include": include} if include else None
        return self.call("get_session", "GET", f"/replay/sessions/{sid}", params=params)

    def post(self, endpoint: str, sid: str, suffix: str, body: Any) -> requests.Response:
        """POST /replay/sessions/{sid}/<suffix>."""
        return self.call(endpoint, "POST", f"/replay/sessions/{sid}/{suffix}", body)

    def preflight(self, sid: str, **body: Any) -> requests.Response:
        """POST .../preflight."""
        return self.post("preflight", sid, "preflight", body)

    def propose(self, sid: str, **body: Any) -> requests.Response:
        """POST .../proposals."""
        return self.post("proposals", sid, "proposals", body)

    def receipt(self, sid: str, **body: Any) -> requests.Response:
        """POST .../receipts."""
        return self.post("receipts", sid, "receipts", body)

    def label(self, sid: str, **body: Any) -> requests.Response:
        """POST .../labels."""
        return self.post("labels", sid, "labels", body)

    def tool_filter(self, sid: str, **body: Any) -> requests.Response:
        """POST .../tool-filter."""
        return self.post("tool_filter", sid, "tool-filter", body)

    def report_bypass(self, sid: str, **body: Any) -> requests.Response:
        """POST .../report-bypass."""
        return self.post("report_bypass", sid, "report-bypass", body)

    def kill(self, sid: str, **body: Any) -> requests.Response:
        """POST .../kill."""
        return self.post("kill", sid, "kill", body)

    def recover(self, sid: str, **body: Any) -> requests.Response:
        """POST .../recover."""
        return self.post("recover", sid, "recover", body)

    def plan(self, **params: str) -> requests.Response:
        """GET /governance/plan."""
        return self.call("governance_plan", "GET", "/governance/plan", params=params)

    def get_workflow(self, wid: str) -> requests.Response:
        """GET /replay/workflows/{wid}."""
        return self.call("get_workflow", "GET", f"/replay/workflows/{wid}")

    def offer_handoff(self, sid: str, **body: Any) -> requests.Response:
        """POST /replay/sessions/{sid}/handoffs."""
        return self.post("offer_handoff", sid, "handoffs", body)

    def complete_handoff(self, wid: str, hid: str, **body: Any) -> requests.Response:
        """POST /replay/workflows/{wid}/handoffs/{hid}/complete."""
        path = f"/replay/workflows/{wid}/handoffs/{hid}/complete"
        return self.call("complete_handoff", "POST", path, body)

    def reclaim_handoff(self, wid: str, hid: str, **body: Any) -> requests.Response:
        """POST /replay/workflows/{wid}/handoffs/{hid}/reclaim."""
        path = f"/replay/workflows/{wid}/handoffs/{hid}/reclaim"
        return self.call("reclaim_handoff", "POST", path, body)

    def kill_workflow(self, wid: str, **body: Any) -> requests.Response:
        """POST /replay/workflows/{wid}/kill."""
        return self.call("kill_workflow", "POST", f"/replay/workflows/{wid}/kill", body)


def check_answer(registry: SchemaRegistry, endpoint: str, response: requests.Response) -> None:
    """Raise ContractViolation unless the answer is what the contract says it must be."""
    request_id = response.headers.get("X-Request-Id", "")
    if not request_id.startswith("req_"):
        raise ContractViolation(f"X-Request-Id missing or malformed: {request_id!r}")
    if not response.headers.get("content-type", "").startswith("application/json"):
        raise ContractViolation(f"content-type is {response.headers.get('content-type')!r}")
    body = response.json()
    problems = registry.response_errors(endpoint, response.status_code, body)
    if problems:
        raise ContractViolation(
            f"{endpoint} answered {response.status_code} off-schema: {problems}\n{body}"
        )
    if response.status_code >= 400 and body["error"]["request_id"] != request_id:
        raise ContractViolation("error.request_id differs from X-Request-Id")
    if response.status_code == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
        raise ContractViolation("401 without WWW-Authenticate: Bearer")


def error_code(response: requests.Response) -> str:
    """The envelope's code of an error answer."""
    return str(response.json()["error"]["code"])
