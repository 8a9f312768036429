"""Security: auth before anything else, tenants see nothing of each other, loopback by default,
the control API refuses without its token, and API keys never show in logs or the journal.

The endpoint matrix is built from `http/api.py` OPERATIONS and the control routes, so a new
endpoint is covered the day it is added.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vesanor_mock.config import Settings
from vesanor_mock.domain.world import PlanSeed
from vesanor_mock.http.api import API_PREFIX, OPERATIONS, Operation
from vesanor_mock.http.app import MockService
from vesanor_mock.http.control import CONTROL_PREFIX, control_routes
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

from .apiclient import Api, check_answer
from .contracts_examples import refund_contract
from .mockctl import Control
from .test_api_cycle import call, cycle
from .test_api_workflows import compiled_workflow, offer

ACME_KEY = "vsk_acme_4f9c2d81e7"
GLOBEX_KEY = "vsk_globex_a13b77c0d2"
CONTROL_TOKEN = "ctl_0b5e7d1f93"
SECRETS = (ACME_KEY, GLOBEX_KEY, CONTROL_TOKEN)
ACME_AGENT = "acme-ledger-bot"
CREDENTIALS = {
    "no key": {},
    "another scheme": {"Authorization": f"Basic {ACME_KEY}"},
    "an empty bearer": {"Authorization": "Bearer "},
    "a wrong key": {"Authorization": "Bearer vsk_acme_4f9c2d81e8"},
    "a key with a suffix": {"Authorization": f"Bearer {ACME_KEY}x"},
    "the control token": {"Authorization": f"Bearer {CONTROL_TOKEN}"},
}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """Two tenants (acme holds everything, globex nothing), a plan, and a control token."""
    settings = Settings(
        port=0,
        api_keys={ACME_KEY: "acme", GLOBEX_KEY: "globex"},
        plans=(
            PlanSeed(
                agent=ACME_AGENT,
                environment="production",
                compiled_session=refund_contract(agent=ACME_AGENT),
                tenant="acme",
            ),
        ),
        control_token=CONTROL_TOKEN,
    )
    with MockServer(settings) as running:
        yield running


@pytest.fixture
def acme(server: MockServer, registry: SchemaRegistry) -> Iterator[Api]:
    """Tenant acme's client on a fresh world."""
    server.service.reset()
    yield Api(server.url, registry, ACME_KEY)
    server.check()


@pytest.fixture
def ctl(server: MockServer, registry: SchemaRegistry) -> Control:
    """The control API, with its token."""
    return Control(server.url, registry, token=CONTROL_TOKEN)


@pytest.fixture
def story(acme: Api) -> dict[str, Any]:
    """Acme's resources: a session with a pending call, a workflow and an offered handoff."""
    created = acme.create_session(
        agent=ACME_AGENT, environment="production", metadata={"owner": "acme-finance"}
    ).json()
    sid, fence = created["session"]["session_id"], created["lease"]["fence_token"]
    acme.label(sid, key="acme-secret-label", value="acme-secret-value")
    proposal = cycle(acme, sid, fence, call("verify_customer"))
    workflow = {"type": "root", "role": "orchestrator", "compiled_workflow": compiled_workflow()}
    root = acme.create_session(agent=ACME_AGENT, workflow=workflow).json()
    root_sid, root_fence = root["session"]["session_id"], root["lease"]["fence_token"]
    handoff = offer(acme, root_sid, root_fence, "researcher", payload={"acme": "payload"})
    return {
        "sid": sid,
        "fence": fence,
        "lease_id": created["lease"]["lease_id"],
        "pending": proposal["calls"][0]["pending_call_id"],
        "prepared": "prep_unknown",
        "wid": handoff["workflow_id"],
        "hid": handoff["handoff_id"],
        "root": root_sid,
    }


def path_params(op: Operation) -> tuple[str, ...]:
    """The `{name}` ids in an operation's path."""
    return tuple(re.findall(r"\{(\w+)\}", op.path))


def request_for(op: Operation, story: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A request to `op` aimed at acme's resources that acme itself would get through."""
    path = API_PREFIX + op.path.format(**story)
    bodies: dict[str, dict[str, Any]] = {
        "create_session": {"agent": ACME_AGENT, "session_id": story["sid"]},
        "preflight": {"fence_token": story["fence"]},
        "proposals": {
            "prepared_request_id": story["prepared"],
            "fence_token": story["fence"],
            "response": {"tool_calls": []},
        },
        "receipts": {
            "pending_call_id": story["pending"],
            "fence_token": story["fence"],
            "outcome": "success",
        },
        "labels": {"key": "k"},
        "offer_handoff": {"to_role": "researcher", "fence_token": story["fence"]},
    }
    if op.name == "governance_plan":
        path += f"?agent={ACME_AGENT}&environment=production"
    if op.name == "offer_handoff":
        path = API_PREFIX + op.path.format(sid=story["root"])
    return path, (bodies.get(op.name, {}) if op.has_body else None)


def send(
    server: MockServer, op: Operation, path: str, body: Any, headers: dict[str, str]
) -> requests.Response:
    """One raw request."""
    return requests.request(
        op.method, server.url + path, json=body, headers=headers, timeout=10, allow_redirects=False
    )


def acme_values(acme: Api, story: dict[str, Any]) -> set[str]:
    """Strings only acme's state holds: ids, names, labels, payloads (never sent by globex)."""
    state = json.dumps(
        [
            acme.get_session(story["sid"], include="pending").json(),
            acme.get_workflow(story["wid"]).json(),
        ]
    )
    ids = set(
        re.findall(r"\b(?:sess|lease|prep|prop|pc|lbl|hof|wf|plan|appr)_[0-9a-f]{16}\b", state)
    )
    return ids | {ACME_AGENT, "acme-finance", "acme-secret-label", "acme-secret-value", "payload"}


def state(ctl: Control) -> dict[str, Any]:
    """Everything the world holds, less the journal."""
    snapshot = ctl.state()
    snapshot.pop("journal")
    return snapshot


OPS = [pytest.param(op, id=op.name) for op in OPERATIONS]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("credential", list(CREDENTIALS), ids=list(CREDENTIALS))
def test_without_a_valid_key_every_endpoint_answers_401_and_changes_nothing(
    server: MockServer,
    acme: Api,
    ctl: Control,
    story: dict[str, Any],
    op: Operation,
    credential: str,
) -> None:
    before = state(ctl)
    path, body = request_for(op, story)
    answer = send(server, op, path, body, CREDENTIALS[credential])
    check_answer(acme.registry, op.name, answer)
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "UNAUTHORIZED"
    assert not acme_values(acme, story) & set(re.findall(r"[\w.-]+", answer.text))
    assert state(ctl) == before


@pytest.mark.parametrize("op", [o for o in OPS if o.values[0].has_body])
def test_auth_is_checked_before_the_body_its_type_its_size_and_the_query(
    server: MockServer, acme: Api, ctl: Control, story: dict[str, Any], op: Operation
) -> None:
    before = state(ctl)
    path, _ = request_for(op, story)
    for headers, data in [
        ({"Content-Type": "application/json"}, b"{not json"),
        ({"Content-Type": "text/plain"}, b"hello"),
        ({"Content-Type": "application/json", "Content-Length": str(10**9)}, b"{}"),
    ]:
        answer = requests.post(
            server.url + path + "?unknown=1", data=data, headers=headers, timeout=10
        )
        check_answer(acme.registry, op.name, answer)
        assert answer.status_code == 401, answer.text
    assert state(ctl) == before


@pytest.mark.parametrize("op", OPS)
def test_another_tenants_key_finds_nothing_of_acme_and_changes_nothing(
    server: MockServer, acme: Api, ctl: Control, story: dict[str, Any], op: Operation
) -> None:
    secrets = acme_values(acme, story)
    before = state(ctl)
    path, body = request_for(op, story)
    globex = {"Authorization": f"Bearer {GLOBEX_KEY}"}
    answer = send(server, op, path, body, globex)
    check_answer(acme.registry, op.name, answer)
    words = set(re.findall(r"[\w.-]+", answer.text))
    sent = set(re.findall(r"[\w.-]+", f"{path} {json.dumps(body)}"))
    assert not (secrets - sent) & words, "the answer shows acme's data globex did not send"
    if path_params(op):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"].endswith("NOT_FOUND")
        assert state(ctl) == before
    else:
        # create and plan lookup answer in globex's own namespace (a 201, a no_plan)
        assert (
            answer.json()
            != send(server, op, path, body, {"Authorization": f"Bearer {ACME_KEY}"}).json()
        )
        acme_sessions = [s for s in state(ctl)["sessions"] if s["tenant"] == "acme"]
        assert acme_sessions == [s for s in before["sessions"] if s["tenant"] == "acme"]


@pytest.mark.parametrize("op", [o for o in OPS if path_params(o.values[0])])
def test_another_tenants_resource_answers_exactly_like_a_missing_one(
    server: MockServer, acme: Api, story: dict[str, Any], op: Operation
) -> None:
    path, body = request_for(op, story)
    missing_story = {k: (f"x{v}" if isinstance(v, str) else v) for k, v in story.items()}
    missing_path, _ = request_for(op, missing_story)
    globex = {"Authorization": f"Bearer {GLOBEX_KEY}"}
    found = send(server, op, path, body, globex).json()["error"]
    missing = send(server, op, missing_path, body, globex).json()["error"]
    for error in (found, missing):
        error.pop("request_id")
    shown = json.dumps(missing)
    for name in (*path_params(op), "root"):
        shown = shown.replace(missing_story[name], story[name])
    assert json.loads(shown) == found


def test_a_session_id_of_one_tenant_is_free_for_another(
    server: MockServer, acme: Api, story: dict[str, Any], registry: SchemaRegistry
) -> None:
    globex = Api(server.url, registry, GLOBEX_KEY)
    created = globex.create_session(agent="globex-bot", session_id=story["sid"])
    assert created.status_code == 201
    assert created.json()["lease"]["lease_id"] != story["lease_id"]
    assert acme.get_session(story["sid"]).json()["session"]["agent"] == ACME_AGENT


CONTROL = [
    pytest.param(method, route.path, id=f"{method} {route.path}")
    for route in control_routes(MockService(Settings()))
    if route.path.startswith(CONTROL_PREFIX)
    for method in sorted(route.methods or ()) if method != "HEAD"
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), CONTROL)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": f"Bearer {ACME_KEY}"}, {"Authorization": "Bearer ctl_wrong"}],
    ids=["no token", "an API key", "a wrong token"],
)
def test_with_a_control_token_every_control_route_refuses_without_it(
    server: MockServer,
    ctl: Control,
    story: dict[str, Any],
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    before = state(ctl)
    answer = requests.request(method, server.url + path, json={}, headers=headers, timeout=10)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "UNAUTHORIZED"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert state(ctl) == before


def test_the_server_binds_loopback_by_default() -> None:
    assert Settings().host == "127.0.0.1"
    with MockServer() as running:
        assert running.host == "127.0.0.1"
        assert running.url.startswith("http://127.0.0.1:")
        assert running._server is not None
        bound = [s.getsockname()[0] for server in running._server.servers for s in server.sockets]
        assert bound == ["127.0.0.1"]


def test_api_keys_and_the_control_token_never_show_in_logs_the_journal_or_the_state(
    server: MockServer,
    acme: Api,
    ctl: Control,
    story: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    for op in OPERATIONS:
        path, body = request_for(op, story)
        for key in (ACME_KEY, GLOBEX_KEY, ACME_KEY + "x"):
            send(server, op, path, body, {"Authorization": f"Bearer {key}"})
    from vesanor_mock.http import exchange

    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug, to make the mock log a traceback")

    monkeypatch.setattr(exchange.effects, "facts_for", broken)
    assert acme.label(story["sid"], key="k").status_code == 500
    server.service.server_errors.clear()
    monkeypatch.undo()
    control = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
    export = requests.get(server.url + "/_mock/export", headers=control, timeout=10)
    assert export.status_code == 200, export.text
    exports = [
        caplog.text,
        ctl.call("GET", "/journal").text,
        ctl.call("GET", "/state").text,
        ctl.call("GET", "/health").text,
        export.text,
        "\n".join(server.service.server_errors),
    ]
    assert "a bug, to make the mock log a traceback" in caplog.text, "the log was not captured"
    assert any(r.name == "vesanor_mock.access" for r in caplog.records), "no access log lines"
    for text in exports:
        for secret in SECRETS:
            assert secret not in text
