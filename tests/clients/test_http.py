"""Tests of `JsonApi`: over real HTTP against the platform stand-in, and with `responses`."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests
import responses

from rpa.clients import errors
from rpa.clients.http import ERROR_MESSAGE_MAX_CHARS, JsonApi
from rpa.sandbox.platform import PlatformStandIn

TOKEN = "test-bearer-token-5f2c"
SITE = "modeler-a.trial.example"
RESOURCES = {"cpu": 4, "memory_gib": 16, "gpu": 0, "storage_gib": 50}
RETRIES = 2
FAKE_BASE = "http://platform.test/site"

LIST_PROJECTS = ("modeler", "GET", "/api/v1/projects")
CREATE_PROJECT = ("modeler", "POST", "/api/v1/projects")
STOP_WORKSPACE = ("modeler", "POST", "/api/v1/workspaces/{item_id}/stop")


def make_api(base_url: str, *, timeout_seconds: float = 5.0, retries: int = RETRIES,
             verify: bool = True) -> JsonApi:
    return JsonApi(base_url, service="modeler", token=TOKEN, timeout_seconds=timeout_seconds,
                   retries=retries, backoff_seconds=0, verify=verify)


@pytest.fixture
def stand_in() -> Iterator[PlatformStandIn]:
    server = PlatformStandIn(token=TOKEN, port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(stand_in: PlatformStandIn) -> Iterator[JsonApi]:
    client = make_api(stand_in.site_url(SITE))
    yield client
    client.close()


@pytest.fixture
def fake_api() -> Iterator[JsonApi]:
    """A client of a host that only `responses` serves."""
    client = make_api(FAKE_BASE)
    yield client
    client.close()


def create_project(api: JsonApi, name: str) -> dict[str, Any]:
    reply = api.request("POST", "/api/v1/projects", idempotent=False,
                        body={"name": name, "owner": "trial_user07", "resources": RESOURCES})
    assert isinstance(reply, dict)
    return reply


# Over real HTTP against the stand-in.


def test_get_returns_decoded_json(api: JsonApi) -> None:
    assert api.request("GET", "/api/v1/health", idempotent=True) == {"status": "ok"}


def test_post_sends_json_body_and_returns_created_object(api: JsonApi,
                                                         stand_in: PlatformStandIn) -> None:
    project = create_project(api, "분석-프로젝트")

    assert project["name"] == "분석-프로젝트"
    assert project["resources"] == RESOURCES
    assert [p["id"] for p in stand_in.projects(SITE)] == [project["id"]]


def test_empty_reply_returns_none(api: JsonApi) -> None:
    project = create_project(api, "p1")

    assert api.request("DELETE", f"/api/v1/projects/{project['id']}", idempotent=True) is None


def test_wrong_token_raises_unauthorized(stand_in: PlatformStandIn) -> None:
    client = JsonApi(stand_in.site_url(SITE), service="modeler", token="wrong",
                     timeout_seconds=5, retries=RETRIES, backoff_seconds=0)

    with pytest.raises(errors.Unauthorized) as caught:
        client.request("GET", "/api/v1/projects", idempotent=True)

    assert caught.value.status == 401
    assert stand_in.calls[LIST_PROJECTS] == 1


def test_get_is_retried_on_503_until_it_succeeds(api: JsonApi, stand_in: PlatformStandIn
                                                 ) -> None:
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=503,
                       times=RETRIES)

    reply = api.request("GET", "/api/v1/projects", idempotent=True)

    assert reply["items"] == []
    assert stand_in.calls[LIST_PROJECTS] == RETRIES + 1


def test_get_gives_up_after_retries_with_unavailable(api: JsonApi, stand_in: PlatformStandIn
                                                     ) -> None:
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=503,
                       times=RETRIES + 1)

    with pytest.raises(errors.Unavailable) as caught:
        api.request("GET", "/api/v1/projects", idempotent=True)

    assert caught.value.status == 503
    assert stand_in.calls[LIST_PROJECTS] == RETRIES + 1


def test_create_is_not_retried_on_503(api: JsonApi, stand_in: PlatformStandIn) -> None:
    stand_in.fail_next(method="POST", path_contains="/api/v1/projects", status=503)

    with pytest.raises(errors.Unavailable):
        create_project(api, "p1")

    assert stand_in.calls[CREATE_PROJECT] == 1


def test_create_is_not_retried_after_a_read_timeout(stand_in: PlatformStandIn) -> None:
    client = make_api(stand_in.site_url(SITE), timeout_seconds=0.2)
    # The fault replies 201 too late, like a server that created the project but whose reply
    # was lost on the way.
    stand_in.fail_next(method="POST", path_contains="/api/v1/projects", status=201,
                       delay_seconds=0.6, body="{}")

    with pytest.raises(errors.Unavailable):
        create_project(client, "p1")

    assert stand_in.calls[CREATE_PROJECT] == 1
    client.close()


def test_idempotent_stop_is_retried_on_503(api: JsonApi, stand_in: PlatformStandIn) -> None:
    project = create_project(api, "p1")
    workspace = api.request("POST", "/api/v1/workspaces", idempotent=False,
                            body={"project_id": project["id"], "name": "ws"})
    stand_in.fail_next(method="POST", path_contains="/stop", status=503)

    reply = api.request("POST", f"/api/v1/workspaces/{workspace['id']}/stop", idempotent=True)

    assert reply["status"] == "STOPPED"
    assert stand_in.calls[STOP_WORKSPACE] == 2


def test_timeout_raises_unavailable_after_retries(stand_in: PlatformStandIn) -> None:
    client = make_api(stand_in.site_url(SITE), timeout_seconds=0.2)
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=200,
                       body='{"items": [], "total": 0}', delay_seconds=0.5, times=RETRIES + 1)

    with pytest.raises(errors.Unavailable) as caught:
        client.request("GET", "/api/v1/projects", idempotent=True)

    assert "modeler GET /api/v1/projects" in str(caught.value)
    assert stand_in.calls[LIST_PROJECTS] == RETRIES + 1
    client.close()


def test_malformed_json_in_200_raises_invalid_response(api: JsonApi, stand_in: PlatformStandIn
                                                       ) -> None:
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=200,
                       body='{"items": [')

    with pytest.raises(errors.InvalidResponse) as caught:
        api.request("GET", "/api/v1/projects", idempotent=True)

    assert caught.value.status == 200
    assert "not JSON" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        '{"items": {}, "total": 0}',  # items is an object, not a list
        '{"items": []}',  # total is missing
        '{"items": [], "total": "3"}',  # total is a string
        '{"items": [1, 2], "total": 2}',  # items are not objects
        "[]",  # a bare list instead of the page object
    ],
)
def test_listing_of_unexpected_shape_raises_invalid_response(
    api: JsonApi, stand_in: PlatformStandIn, body: str
) -> None:
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=200, body=body)

    with pytest.raises(errors.InvalidResponse, match="unexpected shape"):
        list(api.list_all("/api/v1/projects"))


@pytest.mark.parametrize(
    ("count", "per_page", "pages"),
    [
        (5, 2, 3),  # the last page is partly filled
        (4, 2, 2),  # the total is a multiple of the page size: no extra empty page
        (0, 2, 1),  # an empty listing still takes one call
        (3, 100, 1),  # everything fits on the first page
    ],
)
def test_list_all_one_call_per_page(
    api: JsonApi, stand_in: PlatformStandIn, count: int, per_page: int, pages: int
) -> None:
    created = [create_project(api, f"p{index}")["id"] for index in range(count)]
    stand_in.reset_calls()

    listed = list(api.list_all("/api/v1/projects", per_page=per_page))

    assert [item["id"] for item in listed] == created
    assert stand_in.calls[LIST_PROJECTS] == pages


def test_list_all_passes_filters_on_every_page(api: JsonApi, stand_in: PlatformStandIn) -> None:
    for index in range(3):
        api.request("POST", "/api/v1/projects", idempotent=False,
                    body={"name": f"mine{index}", "owner": "trial_user01", "resources": RESOURCES})
    create_project(api, "theirs")

    listed = list(api.list_all("/api/v1/projects", params={"owner": "trial_user01"}, per_page=2))

    assert [item["name"] for item in listed] == ["mine0", "mine1", "mine2"]
    assert stand_in.calls[LIST_PROJECTS] == 2


def test_error_message_keeps_error_message_cut_to_limit(api: JsonApi, stand_in: PlatformStandIn
                                                        ) -> None:
    long_message = "x" * (ERROR_MESSAGE_MAX_CHARS - 3) + "END" + "y" * 300
    body = json.dumps({"error": {"code": "bad", "message": long_message}})
    stand_in.fail_next(method="POST", path_contains="/api/v1/projects", status=400, body=body)

    with pytest.raises(errors.InvalidRequest) as caught:
        create_project(api, "p1")

    message = str(caught.value)
    assert message == ("modeler POST /api/v1/projects failed with HTTP 400: "
                       + long_message[:ERROR_MESSAGE_MAX_CHARS])
    assert message.endswith("END")
    assert TOKEN not in message


@pytest.mark.parametrize(
    "echoed",
    [
        # A server that echoes the request headers.
        pytest.param(f"header was Bearer {TOKEN}", id="echoed"),
        # The token straddles the cut, so masking after the cut would leave its start.
        pytest.param("x" * (ERROR_MESSAGE_MAX_CHARS - 5) + TOKEN, id="at-the-cut"),
    ],
)
def test_error_message_never_contains_the_bearer_token(
    api: JsonApi, stand_in: PlatformStandIn, echoed: str
) -> None:
    body = json.dumps({"error": {"code": "bad", "message": echoed}})
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=400, body=body)

    with pytest.raises(errors.InvalidRequest) as caught:
        api.request("GET", "/api/v1/projects", idempotent=True)

    message = str(caught.value)
    assert TOKEN[:6] not in message
    assert message.endswith(echoed.replace(TOKEN, "***")[:ERROR_MESSAGE_MAX_CHARS])


def test_verify_false_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rpa.clients.http"):
        client = make_api("https://modeler.trial.example", verify=False)

    assert [record.getMessage() for record in caplog.records] == [
        "TLS verification is off for modeler at https://modeler.trial.example"
    ]
    client.close()


def test_verify_true_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="rpa.clients.http"):
        client = make_api("https://modeler.trial.example")

    assert caplog.records == []
    client.close()


# Error paths with `responses`.


@pytest.mark.parametrize(
    ("status", "expected", "retried"),
    [
        (400, errors.InvalidRequest, False),  # malformed request
        (401, errors.Unauthorized, False),  # missing or wrong token
        (403, errors.Forbidden, False),  # token lacks the permission
        (404, errors.NotFound, False),  # no such resource
        (409, errors.Conflict, False),  # e.g. the project name exists
        (422, errors.InvalidRequest, False),  # well-formed but invalid values
        (429, errors.Throttled, True),  # rate limit, retried first
        (500, errors.Unavailable, True),  # server failure
        (502, errors.Unavailable, True),  # bad gateway
        (503, errors.Unavailable, True),  # service unavailable
        (504, errors.Unavailable, True),  # gateway timeout
    ],
)
@responses.activate
def test_status_raises_its_exception_class(
    fake_api: JsonApi, status: int, expected: type[errors.ClientError], retried: bool
) -> None:
    responses.add("GET", f"{FAKE_BASE}/api/v1/projects", status=status,
                  json={"error": {"code": "some_code", "message": "the reason"}})

    with pytest.raises(expected) as caught:
        fake_api.request("GET", "/api/v1/projects", idempotent=True)

    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.service == "modeler"
    assert str(caught.value) == (f"modeler GET /api/v1/projects failed with HTTP {status}: "
                                 "the reason")
    assert len(responses.calls) == (RETRIES + 1 if retried else 1)


@responses.activate
def test_unlisted_4xx_raises_plain_client_error(fake_api: JsonApi) -> None:
    responses.add("GET", f"{FAKE_BASE}/api/v1/projects", status=418)

    with pytest.raises(errors.ClientError) as caught:
        fake_api.request("GET", "/api/v1/projects", idempotent=True)

    assert type(caught.value) is errors.ClientError
    assert str(caught.value) == "modeler GET /api/v1/projects failed with HTTP 418"


@responses.activate
def test_error_body_of_unknown_shape_is_left_out(fake_api: JsonApi) -> None:
    responses.add("POST", f"{FAKE_BASE}/api/v1/projects", status=400,
                  json={"detail": "password=hunter2 was rejected"})

    with pytest.raises(errors.InvalidRequest) as caught:
        fake_api.request("POST", "/api/v1/projects", idempotent=False, body={})

    assert str(caught.value) == "modeler POST /api/v1/projects failed with HTTP 400"


@responses.activate
def test_post_is_sent_once_on_503(fake_api: JsonApi) -> None:
    responses.add("POST", f"{FAKE_BASE}/api/v1/projects", status=503)

    with pytest.raises(errors.Unavailable):
        fake_api.request("POST", "/api/v1/projects", idempotent=False, body={"name": "p"})

    assert len(responses.calls) == 1


@responses.activate
def test_connection_error_raises_unavailable(fake_api: JsonApi) -> None:
    responses.add("GET", f"{FAKE_BASE}/api/v1/projects",
                  body=requests.ConnectionError("connection refused"))

    with pytest.raises(errors.Unavailable) as caught:
        fake_api.request("GET", "/api/v1/projects", idempotent=True)

    assert str(caught.value) == "modeler GET /api/v1/projects failed: ConnectionError"


@responses.activate
def test_request_sends_bearer_token_and_params(fake_api: JsonApi) -> None:
    responses.add("GET", f"{FAKE_BASE}/api/v1/workspaces", json={"items": [], "total": 0})

    fake_api.request("GET", "/api/v1/workspaces", idempotent=True, params={"status": "RUNNING"})

    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.url == f"{FAKE_BASE}/api/v1/workspaces?status=RUNNING"


# Proxy settings of the environment, read once when the client is built.


class _RecordingProxy(http.server.BaseHTTPRequestHandler):
    """Replies to every request itself with the request line that a forward proxy receives."""

    lines: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.lines.append(self.requestline)
        body = json.dumps({"via": "proxy"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    _RecordingProxy.lines = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_environment_proxy_read_once(
        proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_api(FAKE_BASE)
    # Later changes of the environment do not reach a client already built.
    monkeypatch.delenv("HTTP_PROXY")

    assert client.request("GET", "/api/v1/projects", idempotent=True) == {"via": "proxy"}
    assert _RecordingProxy.lines == ["GET http://platform.test/site/api/v1/projects HTTP/1.1"]
    client.close()


def test_no_proxy_host_is_reached_directly(proxy: str, stand_in: PlatformStandIn,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = make_api(stand_in.site_url(SITE))

    assert client.request("GET", "/api/v1/projects", idempotent=True)["items"] == []
    assert _RecordingProxy.lines == []
    client.close()
