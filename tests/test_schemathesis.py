"""Schemathesis, a client no one here wrote, fuzzes every operation of the served OpenAPI document.

Checks: no 5xx, status codes, content types, response headers and bodies as documented,
schema-valid requests accepted (or refused only as the document says), and the project's
own envelope rules. A fixed seed, derandomized Hypothesis and bounded examples keep the run
reproducible and short; `pytest -q` prints what it checked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, initialize
from schemathesis import Case, CheckContext
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepInput

from vesanor_mock.openapi import OPERATIONS, build_openapi
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .fuzztally import tally_of

AUTH = {"Authorization": "Bearer vsk_test_default"}
SEED = 20260101
MAX_EXAMPLES = 30
STATEFUL_EXAMPLES = 40
STATEFUL_STEPS = 10

ACCEPTED = ["2xx", "401", "404", "409"]
"""What a schema-valid request may get: success or a refusal of state, never one of shape."""
REFUSED = ["400", "401", "404", "405", "409", "413", "415", "422"]
"""What a schema-violating request may get: every 4xx the document declares for a body."""

REGISTRY = SchemaRegistry.load()
DOCUMENT = build_openapi(REGISTRY)
ENDPOINT_OF = {op.op_id: op.endpoint for op in OPERATIONS}
"""The endpoint name (schemas, journal, rules) of each operationId."""


def semantic_operations(document: dict[str, Any]) -> list[str]:
    """Operations whose document says a schema-valid request may still get a 422."""
    return [
        op["operationId"]
        for methods in document["paths"].values()
        for op in methods.values()
        if "x-semantic-codes" in op["responses"].get("422", {})
    ]


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "headers": AUTH,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            "negative_data_rejection": {"expected-statuses": REFUSED},
        },
        "operations": [
            {
                "include-operation-id": name,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
            }
            for name in semantic_operations(DOCUMENT)
        ],
    }
)
# The control API (tag mock) resets and reloads the world the fuzzer works in: it has its
# own tests (test_control_api.py), so the fuzzer leaves it out.
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG).exclude(tag="mock")
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def envelope_rules(ctx: CheckContext, response: Response, case: Case) -> None:
    """The project's own rules: X-Request-Id, the registry's schema, error.request_id."""
    request_id = response.headers.get("x-request-id", [""])[0]
    assert request_id.startswith("req_"), f"X-Request-Id is {request_id!r}"
    body = response.json()
    endpoint = ENDPOINT_OF[case.operation.definition.raw["operationId"]]
    if case.operation.method.upper() != case.method.upper():
        endpoint = "create_session"  # any endpoint: a 405 answer is judged as an error
    problems = REGISTRY.response_errors(endpoint, response.status_code, body)
    assert not problems, f"{case.operation.label} answered {response.status_code}: {problems}"
    if response.status_code >= 400:
        assert body["error"]["request_id"] == request_id


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One mock server for the whole fuzz run; its errors (500s) fail the example."""
    with MockServer() as running:
        yield running


@schema.parametrize()
@HYPOTHESIS
def test_every_operation_answers_within_its_documented_contract(
    case: Case, server: MockServer, pytestconfig: pytest.Config
) -> None:
    response = case.call_and_validate(base_url=server.url, additional_checks=[envelope_rules])
    tally_of(pytestconfig).examples[(case.operation.label, response.status_code)] += 1
    server.check()


CREATE = schema["/api/v1/replay/sessions"]["POST"]


def test_linked_sequences_keep_the_contract(
    server: MockServer, pytestconfig: pytest.Config
) -> None:
    tally = tally_of(pytestconfig)

    class Linked(schema.as_state_machine()):  # type: ignore[misc]
        """The document's links: a created session's id, an offered handoff's ids."""

        def setup(self) -> None:
            server.service.reset()  # each scenario on a fresh world: replays see the same answers

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": server.url}

        def after_call(self, response: Response, case: Case) -> None:
            tally.steps[(case.operation.label, response.status_code)] += 1
            server.check()

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            super().validate_response(response, case, [envelope_rules], **kwargs)

        # Schemathesis 4.32 does not start scenarios at create_session: it reads `holder_id`
        # as a key into a "Holder" resource no operation makes. Start every scenario there.
        @initialize(target=Bundle("catch_all"), case=CREATE.as_strategy())
        def create(self, case: Case) -> Any:
            step = StepInput.initial(case)
            self.recorder.record_case(case=case)
            self.control.record_step(step, self.recorder)
            return self.step(step)

    Linked.run(
        settings=settings(
            HYPOTHESIS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS
        )
    )
    assert any(label == CREATE.label and status == 201 for label, status in tally.steps)


def test_the_server_serves_the_document_that_is_fuzzed(server: MockServer) -> None:
    served = requests.get(server.url + "/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


def test_the_document_names_the_422s_a_schema_valid_request_can_get() -> None:
    assert set(semantic_operations(DOCUMENT)) == {
        "create_session",
        "preflight",
        "propose",
        "offer_handoff",
        "get_governance_plan",
    }
    create = DOCUMENT["paths"]["/api/v1/replay/sessions"]["post"]["responses"]["422"]
    assert create["x-semantic-codes"] == ["COMPILE_ERROR", "UNKNOWN_ROLE", "VALIDATION_FAILED"]
    assert "COMPILE_ERROR" in create["description"]
