"""Conformance: authentication, bodies, media types, sizes, routing and ids (PROTOCOL.md §1)."""

from __future__ import annotations

import pytest
import requests

from vesanor_mock.server import MockServer

from .apiclient import Api, error_code


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(api: Api) -> None:
    response = requests.post(
        api.base_url + "/api/v1/replay/sessions", json={"agent": "a"}, timeout=5
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer vsk_wrong", "vsk_test_default"]
)
def test_another_scheme_or_an_unknown_key_is_401(api: Api, header: str) -> None:
    response = api.call(
        "create_session",
        "POST",
        "/replay/sessions",
        {"agent": "a"},
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_auth_is_checked_before_the_body_is_read(api: Api) -> None:
    response = api.call(
        "create_session", "POST", "/replay/sessions", data=b"{not json", key="vsk_wrong"
    )
    assert response.status_code == 401


def test_a_body_that_is_not_json_is_400_malformed_json(api: Api) -> None:
    response = api.call(
        "create_session",
        "POST",
        "/replay/sessions",
        data=b'{"agent": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error_code(response) == "MALFORMED_JSON"


def test_a_body_that_is_not_utf8_is_400_malformed_json(api: Api) -> None:
    response = api.call("create_session", "POST", "/replay/sessions", data=b'{"agent": "\xff"}')
    assert error_code(response) == "MALFORMED_JSON"


def test_json_that_is_not_an_object_is_422(api: Api) -> None:
    response = api.call("create_session", "POST", "/replay/sessions", data=b"[1, 2]")
    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["errors"][0]["path"] == ""


def test_another_content_type_is_415(api: Api) -> None:
    response = api.call(
        "create_session",
        "POST",
        "/replay/sessions",
        data=b"agent=a",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert error_code(response) == "UNSUPPORTED_MEDIA_TYPE"


def test_a_json_content_type_with_a_charset_is_accepted(api: Api) -> None:
    response = api.call(
        "create_session",
        "POST",
        "/replay/sessions",
        data=b'{"agent": "a"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_a_body_without_a_content_type_is_read_as_json(api: Api) -> None:
    response = api.call("create_session", "POST", "/replay/sessions", data=b'{"agent": "a"}')
    assert response.status_code == 201


def test_an_empty_body_is_read_as_an_empty_object(api: Api) -> None:
    sid = api.create_session(agent="a").json()["session"]["session_id"]
    response = api.call("kill", "POST", f"/replay/sessions/{sid}/kill", data=b"")
    assert response.status_code == 200
    missing = api.call("create_session", "POST", "/replay/sessions", data=b"")
    assert missing.json()["error"]["details"]["errors"][0]["path"] == "/agent"


def test_a_body_over_the_limit_is_413_without_being_parsed(api: Api) -> None:
    big = b'{"agent": "' + b"a" * (1024 * 1024) + b'"}'
    response = api.call("create_session", "POST", "/replay/sessions", data=big)
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


def test_unknown_fields_are_rejected_at_every_depth_in_strict_mode(api: Api) -> None:
    top = api.create_session(agent="a", colour="red")
    assert top.status_code == 422
    assert top.json()["error"]["details"]["errors"][0]["path"] == "/colour"
    sid = api.create_session(agent="a").json()["session"]["session_id"]
    deep = api.preflight(sid, fence_token=1, request={"tools": [], "temperature": 1})
    assert deep.json()["error"]["details"]["errors"][0]["path"] == "/request/temperature"


def test_free_form_fields_keep_unknown_content(api: Api) -> None:
    response = api.create_session(agent="a", metadata={"anything": {"goes": [1, 2]}})
    assert response.status_code == 201


def test_a_wrong_type_points_at_the_field_and_says_what_was_expected(api: Api) -> None:
    response = api.create_session(agent=12)
    error = response.json()["error"]["details"]["errors"][0]
    assert (error["path"], error["keyword"]) == ("/agent", "type")
    assert "string" in error["message"]


def test_lenient_validation_ignores_unknown_fields() -> None:
    from vesanor_mock.config import Settings

    with MockServer(Settings(port=0, validation="lenient")) as server:
        response = requests.post(
            server.url + "/api/v1/replay/sessions",
            json={"agent": "a", "colour": "red"},
            headers={"Authorization": "Bearer vsk_test_default"},
            timeout=5,
        )
        assert response.status_code == 201
        wrong = requests.post(
            server.url + "/api/v1/replay/sessions",
            json={"agent": 5},
            headers={"Authorization": "Bearer vsk_test_default"},
            timeout=5,
        )
        assert wrong.status_code == 422


def test_an_unknown_query_parameter_is_refused_in_strict_mode(api: Api) -> None:
    sid = api.create_session(agent="a").json()["session"]["session_id"]
    response = api.call("get_session", "GET", f"/replay/sessions/{sid}", params={"expand": "all"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/expand"


def test_an_unknown_path_is_404_in_the_envelope(api: Api) -> None:
    response = api.call("get_session", "GET", "/nothing/here")
    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


def test_a_wrong_method_is_405_with_an_allow_header(api: Api) -> None:
    response = api.call("get_session", "DELETE", "/replay/sessions/abc")
    assert response.status_code == 405
    assert error_code(response) == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["Allow"]


def test_request_ids_are_deterministic_and_rise_by_one(api: Api) -> None:
    first = api.create_session(agent="a").headers["X-Request-Id"]
    second = api.get_session("nope").headers["X-Request-Id"]
    assert (first, second) == ("req_000001", "req_000002")


def test_validation_off_accepts_unknown_fields_and_values_but_still_needs_the_shape() -> None:
    from vesanor_mock.config import Settings

    headers = {"Authorization": "Bearer vsk_test_default"}
    with MockServer(Settings(port=0, validation="off")) as server:
        url = server.url + "/api/v1/replay/sessions"
        loose = requests.post(url, json={"agent": "", "colour": "red"}, headers=headers, timeout=5)
        assert loose.status_code == 201
        missing = requests.post(url, json={"colour": "red"}, headers=headers, timeout=5)
        assert missing.status_code == 422
        assert missing.json()["error"]["details"]["errors"][0]["path"] == "/agent"
        sid = loose.json()["session"]["session_id"]
        bad_calls = requests.post(
            f"{url}/{sid}/proposals",
            json={"prepared_request_id": "p", "fence_token": 1, "response": {"tool_calls": [{}]}},
            headers=headers,
            timeout=5,
        )
        assert bad_calls.status_code == 422
        no_agent = requests.get(
            server.url + "/api/v1/governance/plan?environment=moon", headers=headers, timeout=5
        )
        assert no_agent.status_code == 422
        assert no_agent.json()["error"]["details"]["errors"][0]["path"] == "/agent"
        server.check()
