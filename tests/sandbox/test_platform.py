"""Tests of the platform stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rpa.sandbox.platform import PlatformStandIn, wait_until

TOKEN = "test-token"
SITE = "modeler-a.trial.example"
OTHER_SITE = "modeler-b.trial.example"
RESOURCES = {"cpu": 4, "memory_gib": 16, "gpu": 0, "storage_gib": 50}


@pytest.fixture
def stand_in() -> Iterator[PlatformStandIn]:
    server = PlatformStandIn(token=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http_session:
        http_session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield http_session


@pytest.fixture
def api(stand_in: PlatformStandIn) -> str:
    return f"{stand_in.site_url(SITE)}/api/v1"


def create_project(
    session: requests.Session, api: str, name: str, owner: str = "trial_user07"
) -> dict[str, Any]:
    response = session.post(
        f"{api}/projects", json={"name": name, "owner": owner, "resources": RESOURCES}
    )
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


def create_item(
    session: requests.Session, api: str, kind: str, project_id: str, name: str
) -> dict[str, Any]:
    response = session.post(f"{api}/{kind}", json={"project_id": project_id, "name": name})
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def assert_error(response: requests.Response, status: int, code: str) -> str:
    """Assert the contract's error shape and return the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    message: str = error["message"]
    return message


def test_start_returns_loopback_url(stand_in: PlatformStandIn) -> None:
    base_url = stand_in.site_url(SITE).removesuffix(f"/{SITE}")

    assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", base_url)
    assert stand_in.site_url(SITE) == f"{base_url}/{SITE}"


def test_start_twice_raises(stand_in: PlatformStandIn) -> None:
    with pytest.raises(RuntimeError):
        stand_in.start()


def test_site_url_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        PlatformStandIn().site_url(SITE)


def test_constructor_rejects_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        PlatformStandIn(token="")
    with pytest.raises(ValueError):
        PlatformStandIn(latency_seconds=-1)
    with pytest.raises(ValueError):
        PlatformStandIn(port=70000)


def test_stop_closes_kept_alive_connections(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    assert session.get(f"{api}/health").status_code == 200

    stand_in.stop()

    with pytest.raises(requests.ConnectionError):
        session.get(f"{api}/health", timeout=5)
    stand_in.stop()


def test_health_returns_ok(session: requests.Session, api: str) -> None:
    response = session.get(f"{api}/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Content-Type"] == "application/json"


def test_create_project_returns_project(session: requests.Session, api: str) -> None:
    response = session.post(
        f"{api}/projects", json={"name": "churn", "owner": "trial_user07", "resources": RESOURCES}
    )

    assert response.status_code == 201
    project = response.json()
    assert re.fullmatch(r"prj-[0-9]+", project["id"])
    assert project["name"] == "churn"
    assert project["owner"] == "trial_user07"
    assert project["resources"] == RESOURCES
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", project["created_at"])
    assert set(project) == {"id", "name", "owner", "resources", "created_at"}


def test_create_project_keeps_korean_text(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    response = session.post(
        f"{api}/projects", json={"name": "수요 예측", "owner": "홍길동", "resources": RESOURCES}
    )

    assert response.status_code == 201
    assert "수요 예측".encode() in response.content
    assert response.json()["name"] == "수요 예측"
    assert stand_in.projects(SITE)[0]["owner"] == "홍길동"


def test_list_projects_in_creation_order(session: requests.Session, api: str) -> None:
    names = ["zeta", "alpha", "mu"]
    ids = [create_project(session, api, name)["id"] for name in names]

    response = session.get(f"{api}/projects")

    assert response.status_code == 200
    listing = response.json()
    assert [project["id"] for project in listing["items"]] == ids
    assert [project["name"] for project in listing["items"]] == names
    assert listing["page"] == 1
    assert listing["per_page"] == 100
    assert listing["total"] == 3


def test_list_projects_pages(session: requests.Session, api: str) -> None:
    names = [f"project-{index}" for index in range(7)]
    for name in names:
        create_project(session, api, name)

    pages = []
    for page in (1, 2, 3, 4):
        response = session.get(f"{api}/projects", params={"page": page, "per_page": 3})
        assert response.status_code == 200
        pages.append(response.json())

    assert [[item["name"] for item in page["items"]] for page in pages] == [
        names[0:3],
        names[3:6],
        names[6:7],
        [],
    ]
    assert [page["page"] for page in pages] == [1, 2, 3, 4]
    assert {page["per_page"] for page in pages} == {3}
    assert {page["total"] for page in pages} == {7}


def test_list_accepts_max_per_page(session: requests.Session, api: str) -> None:
    response = session.get(f"{api}/projects", params={"per_page": 500})

    assert response.status_code == 200
    assert response.json()["per_page"] == 500


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page", "0"),
        ("page", "-1"),
        ("page", "abc"),
        ("page", ""),
        ("per_page", "0"),
        ("per_page", "501"),
        ("per_page", "1.5"),
        ("per_page", "+3"),
    ],
)
def test_list_rejects_bad_paging(
    session: requests.Session, api: str, name: str, value: str
) -> None:
    response = session.get(f"{api}/projects", params={name: value})

    message = assert_error(response, 400, "invalid_request")
    assert name in message


def test_list_rejects_repeated_parameter(session: requests.Session, api: str) -> None:
    response = session.get(f"{api}/projects", params=[("page", "1"), ("page", "2")])

    message = assert_error(response, 400, "invalid_request")
    assert "page" in message


def test_list_projects_filters_owner(session: requests.Session, api: str) -> None:
    create_project(session, api, "a1", owner="alice")
    create_project(session, api, "b1", owner="bob")
    create_project(session, api, "a2", owner="alice")

    response = session.get(f"{api}/projects", params={"owner": "alice", "per_page": "1"})

    listing = response.json()
    assert [project["name"] for project in listing["items"]] == ["a1"]
    assert listing["total"] == 2
    assert session.get(f"{api}/projects", params={"owner": "carol"}).json()["total"] == 0


def test_create_project_duplicate_name_conflicts(
    session: requests.Session, api: str, stand_in: PlatformStandIn
) -> None:
    create_project(session, api, "churn")

    response = session.post(
        f"{api}/projects", json={"name": "churn", "owner": "someone", "resources": RESOURCES}
    )

    message = assert_error(response, 409, "conflict")
    assert "churn" in message
    assert len(stand_in.projects(SITE)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"owner": "u", "resources": RESOURCES}, "name"),
        ({"name": "", "owner": "u", "resources": RESOURCES}, "name"),
        ({"name": "   ", "owner": "u", "resources": RESOURCES}, "name"),
        ({"name": 7, "owner": "u", "resources": RESOURCES}, "name"),
        ({"name": "p", "resources": RESOURCES}, "owner"),
        ({"name": "p", "owner": None, "resources": RESOURCES}, "owner"),
        ({"name": "p", "owner": "u"}, "resources"),
        ({"name": "p", "owner": "u", "resources": [4, 16, 0, 50]}, "resources"),
        ({"name": "p", "owner": "u", "resources": {**RESOURCES, "cpu": -1}}, "resources.cpu"),
        ({"name": "p", "owner": "u", "resources": {**RESOURCES, "gpu": True}}, "resources.gpu"),
        (
            {"name": "p", "owner": "u", "resources": {**RESOURCES, "memory_gib": 1.5}},
            "resources.memory_gib",
        ),
        (
            {"name": "p", "owner": "u", "resources": {**RESOURCES, "storage_gib": "50"}},
            "resources.storage_gib",
        ),
        (
            {"name": "p", "owner": "u", "resources": {"cpu": 4, "memory_gib": 16, "gpu": 0}},
            "resources.storage_gib",
        ),
        ({"name": "p", "owner": "u", "resources": {**RESOURCES, "disk": 1}}, "disk"),
        ({"name": "p", "owner": "u", "resources": RESOURCES, "team": "x"}, "team"),
    ],
)
def test_create_project_names_invalid_field(
    session: requests.Session,
    api: str,
    stand_in: PlatformStandIn,
    body: dict[str, Any],
    field: str,
) -> None:
    response = session.post(f"{api}/projects", json=body)

    message = assert_error(response, 400, "invalid_request")
    assert field in message
    assert stand_in.projects(SITE) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_create_project_rejects_malformed_body(
    session: requests.Session, api: str, body: bytes
) -> None:
    response = session.post(
        f"{api}/projects", data=body, headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, "invalid_request")


def test_patch_project_replaces_resources(
    session: requests.Session, api: str, stand_in: PlatformStandIn
) -> None:
    project = create_project(session, api, "churn")
    new_resources = {"cpu": 8, "memory_gib": 32, "gpu": 1, "storage_gib": 100}

    response = session.patch(f"{api}/projects/{project['id']}", json={"resources": new_resources})

    assert response.status_code == 200
    assert response.json() == {**project, "resources": new_resources}
    assert stand_in.projects(SITE)[0]["resources"] == new_resources
    listed = session.get(f"{api}/projects").json()["items"]
    assert listed[0]["resources"] == new_resources


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "resources"),
        ({"resources": {**RESOURCES, "cpu": -2}}, "resources.cpu"),
        ({"resources": {"cpu": 1}}, "resources.memory_gib"),
        ({"resources": RESOURCES, "name": "renamed"}, "name"),
    ],
)
def test_patch_project_names_invalid_field(
    session: requests.Session,
    api: str,
    stand_in: PlatformStandIn,
    body: dict[str, Any],
    field: str,
) -> None:
    project = create_project(session, api, "churn")

    response = session.patch(f"{api}/projects/{project['id']}", json=body)

    message = assert_error(response, 400, "invalid_request")
    assert field in message
    assert stand_in.projects(SITE)[0] == project


def test_patch_unknown_project_not_found(session: requests.Session, api: str) -> None:
    response = session.patch(f"{api}/projects/prj-999999", json={"resources": RESOURCES})

    message = assert_error(response, 404, "not_found")
    assert "prj-999999" in message


def test_delete_project_then_not_found(
    session: requests.Session, api: str, stand_in: PlatformStandIn
) -> None:
    project = create_project(session, api, "churn")

    response = session.delete(f"{api}/projects/{project['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert stand_in.projects(SITE) == []
    assert session.get(f"{api}/projects").json()["total"] == 0
    assert_error(session.delete(f"{api}/projects/{project['id']}"), 404, "not_found")


@pytest.mark.parametrize("kind", ["workspaces", "deployments"])
def test_delete_project_with_items_conflicts(
    session: requests.Session, api: str, stand_in: PlatformStandIn, kind: str
) -> None:
    project = create_project(session, api, "churn")
    item = create_item(session, api, kind, project["id"], "notebook")
    session.post(f"{api}/{kind}/{item['id']}/stop")

    response = session.delete(f"{api}/projects/{project['id']}")

    message = assert_error(response, 409, "project_not_empty")
    assert project["id"] in message
    assert len(stand_in.projects(SITE)) == 1
    assert session.delete(f"{api}/{kind}/{item['id']}").status_code == 204
    assert session.delete(f"{api}/projects/{project['id']}").status_code == 204


@pytest.mark.parametrize(("kind", "prefix"), [("workspaces", "ws"), ("deployments", "dep")])
def test_create_item_is_running(
    session: requests.Session, api: str, stand_in: PlatformStandIn, kind: str, prefix: str
) -> None:
    project = create_project(session, api, "churn")

    item = create_item(session, api, kind, project["id"], "notebook")

    assert re.fullmatch(rf"{prefix}-[0-9]+", item["id"])
    assert item == {
        "id": item["id"],
        "project_id": project["id"],
        "name": "notebook",
        "status": "RUNNING",
    }
    stored = stand_in.workspaces(SITE) if kind == "workspaces" else stand_in.deployments(SITE)
    assert stored == [item]


@pytest.mark.parametrize("kind", ["workspaces", "deployments"])
def test_create_item_unknown_project_not_found(
    session: requests.Session, api: str, kind: str
) -> None:
    response = session.post(f"{api}/{kind}", json={"project_id": "prj-424242", "name": "nb"})

    message = assert_error(response, 404, "not_found")
    assert "prj-424242" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": "nb"}, "project_id"), ({"project_id": "PROJECT"}, "name"), ({"x": 1}, "x")],
)
def test_create_item_names_invalid_field(
    session: requests.Session, api: str, body: dict[str, Any], field: str
) -> None:
    project = create_project(session, api, "churn")
    filled = {key: project["id"] if value == "PROJECT" else value for key, value in body.items()}

    response = session.post(f"{api}/workspaces", json=filled)

    message = assert_error(response, 400, "invalid_request")
    assert field in message


@pytest.mark.parametrize("kind", ["workspaces", "deployments"])
def test_stop_item_is_idempotent(session: requests.Session, api: str, kind: str) -> None:
    project = create_project(session, api, "churn")
    item = create_item(session, api, kind, project["id"], "notebook")

    first = session.post(f"{api}/{kind}/{item['id']}/stop")
    second = session.post(f"{api}/{kind}/{item['id']}/stop")

    assert first.status_code == 200
    assert first.json() == {**item, "status": "STOPPED"}
    assert second.status_code == 200
    assert second.json() == first.json()


def test_stop_unknown_item_not_found(session: requests.Session, api: str) -> None:
    response = session.post(f"{api}/workspaces/ws-999999/stop")

    message = assert_error(response, 404, "not_found")
    assert "ws-999999" in message


def test_delete_item_then_not_found(
    session: requests.Session, api: str, stand_in: PlatformStandIn
) -> None:
    project = create_project(session, api, "churn")
    item = create_item(session, api, "deployments", project["id"], "model")

    response = session.delete(f"{api}/deployments/{item['id']}")

    assert response.status_code == 204
    assert stand_in.deployments(SITE) == []
    assert_error(session.delete(f"{api}/deployments/{item['id']}"), 404, "not_found")


def test_list_items_filters_status_and_project(session: requests.Session, api: str) -> None:
    first = create_project(session, api, "first")["id"]
    second = create_project(session, api, "second")["id"]
    ws1 = create_item(session, api, "workspaces", first, "ws1")
    ws2 = create_item(session, api, "workspaces", second, "ws2")
    ws3 = create_item(session, api, "workspaces", first, "ws3")
    session.post(f"{api}/workspaces/{ws3['id']}/stop")

    def list_ids(**params: str) -> list[str]:
        response = session.get(f"{api}/workspaces", params=params)
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert list_ids() == [ws1["id"], ws2["id"], ws3["id"]]
    assert list_ids(status="RUNNING") == [ws1["id"], ws2["id"]]
    assert list_ids(status="STOPPED") == [ws3["id"]]
    assert list_ids(project_id=first) == [ws1["id"], ws3["id"]]
    assert list_ids(project_id=first, status="RUNNING") == [ws1["id"]]
    assert list_ids(project_id="prj-999999") == []
    assert session.get(f"{api}/deployments").json()["total"] == 0


def test_list_items_pages(session: requests.Session, api: str) -> None:
    project_id = create_project(session, api, "churn")["id"]
    ids = [create_item(session, api, "deployments", project_id, f"d{i}")["id"] for i in range(5)]

    response = session.get(f"{api}/deployments", params={"page": 2, "per_page": 2})

    listing = response.json()
    assert [item["id"] for item in listing["items"]] == ids[2:4]
    assert listing["total"] == 5


def test_list_items_rejects_unknown_status(session: requests.Session, api: str) -> None:
    response = session.get(f"{api}/workspaces", params={"status": "PAUSED"})

    message = assert_error(response, 400, "invalid_request")
    assert "status" in message


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", TOKEN]
)
def test_request_without_valid_token_unauthorized(
    stand_in: PlatformStandIn, api: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = requests.post(
        f"{api}/projects",
        json={"name": "p", "owner": "u", "resources": RESOURCES},
        headers=headers,
    )

    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert stand_in.projects(SITE) == []


def test_token_scheme_is_case_insensitive(api: str) -> None:
    response = requests.get(f"{api}/health", headers={"Authorization": f"bearer {TOKEN}"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/{SITE}/api/v1/pipelines",
        f"/{SITE}/api/v2/projects",
        f"/{SITE}/api/v1/projects/",
        "/api/v1/projects",
        "/",
    ],
)
def test_unknown_route_not_found(
    stand_in: PlatformStandIn, session: requests.Session, path: str
) -> None:
    base_url = stand_in.site_url(SITE).removesuffix(f"/{SITE}")

    response = session.get(f"{base_url}{path}")

    assert_error(response, 404, "not_found")


def test_unknown_method_not_allowed(session: requests.Session, api: str) -> None:
    response = session.put(f"{api}/projects", json={})

    message = assert_error(response, 405, "method_not_allowed")
    assert "GET" in message
    assert "POST" in message
    assert response.headers["Allow"] == "GET, POST"


def test_sites_are_separate(stand_in: PlatformStandIn, session: requests.Session, api: str) -> None:
    other_api = f"{stand_in.site_url(OTHER_SITE)}/api/v1"
    project = create_project(session, api, "churn")

    other_listing = session.get(f"{other_api}/projects").json()
    same_name = create_project(session, other_api, "churn")

    assert other_listing["items"] == []
    assert other_listing["total"] == 0
    assert same_name["id"] != project["id"]
    assert [p["id"] for p in stand_in.projects(SITE)] == [project["id"]]
    assert [p["id"] for p in stand_in.projects(OTHER_SITE)] == [same_name["id"]]
    assert_error(session.delete(f"{other_api}/projects/{project['id']}"), 404, "not_found")
    other_item = session.post(
        f"{other_api}/workspaces", json={"project_id": project["id"], "name": "x"}
    )
    assert_error(other_item, 404, "not_found")


def test_site_key_with_reserved_characters(
    stand_in: PlatformStandIn, session: requests.Session
) -> None:
    site_key = "team a/site?1"
    other_api = f"{stand_in.site_url(site_key)}/api/v1"

    create_project(session, other_api, "churn")

    assert [p["name"] for p in stand_in.projects(site_key)] == ["churn"]
    assert stand_in.projects(SITE) == []


def test_state_accessors_return_copies(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    create_project(session, api, "churn")

    stand_in.projects(SITE)[0]["resources"]["cpu"] = 99

    assert stand_in.projects(SITE)[0]["resources"]["cpu"] == RESOURCES["cpu"]
    assert stand_in.workspaces(OTHER_SITE) == []


def test_fail_next_returns_injected_status(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    stand_in.fail_next(method="get", path_contains="/api/v1/projects", status=503, times=2)

    post = session.post(f"{api}/projects", json={"name": "p", "owner": "u", "resources": RESOURCES})
    first = session.get(f"{api}/projects")
    second = session.get(f"{api}/projects?owner=u")
    third = session.get(f"{api}/projects")

    assert post.status_code == 201
    message = assert_error(first, 503, "service_unavailable")
    assert "injected" in message
    assert_error(second, 503, "service_unavailable")
    assert third.status_code == 200
    assert third.json()["total"] == 1


def test_fail_next_sends_raw_body(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    stand_in.fail_next(method="GET", path_contains="page=2", status=200, body="<html>oops")

    first_page = session.get(f"{api}/projects", params={"page": 1})
    second_page = session.get(f"{api}/projects", params={"page": 2})

    assert first_page.status_code == 200
    assert first_page.json()["page"] == 1
    assert second_page.status_code == 200
    assert second_page.text == "<html>oops"


def test_fail_next_uses_faults_in_order(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    stand_in.fail_next(method="GET", path_contains="health", status=429)
    stand_in.fail_next(method="GET", path_contains="health", status=502)

    statuses = [session.get(f"{api}/health").status_code for _ in range(3)]

    assert statuses == [429, 502, 200]


def test_fail_next_applies_before_auth(stand_in: PlatformStandIn, api: str) -> None:
    stand_in.fail_next(method="GET", path_contains="health", status=500)

    response = requests.get(f"{api}/health")

    assert_error(response, 500, "internal_server_error")


def test_fail_next_delays_reply(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    stand_in.fail_next(method="GET", path_contains="health", status=504, delay_seconds=0.3)

    started = time.monotonic()
    response = session.get(f"{api}/health")
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert elapsed >= 0.3


def test_fail_next_delay_times_out_client(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    stand_in.fail_next(method="GET", path_contains="health", status=200, delay_seconds=0.5)

    with pytest.raises(requests.ReadTimeout):
        session.get(f"{api}/health", timeout=0.1)

    assert session.get(f"{api}/health").status_code == 200


def test_fail_next_rejects_invalid_arguments(stand_in: PlatformStandIn) -> None:
    with pytest.raises(ValueError):
        stand_in.fail_next(method="GET", path_contains="x", status=99)
    with pytest.raises(ValueError):
        stand_in.fail_next(method="GET", path_contains="x", status=500, times=0)
    with pytest.raises(ValueError):
        stand_in.fail_next(method="GET", path_contains="x", status=500, delay_seconds=-1)


def test_calls_count_per_route(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    project = create_project(session, api, "churn")
    item = create_item(session, api, "workspaces", project["id"], "nb")
    session.get(f"{api}/projects")
    session.get(f"{api}/projects", params={"page": 2})
    session.post(f"{api}/workspaces/{item['id']}/stop")
    requests.get(f"{api}/workspaces")
    stand_in.fail_next(method="GET", path_contains="deployments", status=503)
    session.get(f"{api}/deployments")
    session.get(f"{api}/nothing-here")

    assert stand_in.calls == {
        ("modeler", "POST", "/api/v1/projects"): 1,
        ("modeler", "POST", "/api/v1/workspaces"): 1,
        ("modeler", "GET", "/api/v1/projects"): 2,
        ("modeler", "POST", "/api/v1/workspaces/{item_id}/stop"): 1,
        ("modeler", "GET", "/api/v1/workspaces"): 1,
        ("modeler", "GET", "/api/v1/deployments"): 1,
    }


def test_reset_calls_clears_counts(
    stand_in: PlatformStandIn, session: requests.Session, api: str
) -> None:
    session.get(f"{api}/health")

    stand_in.reset_calls()
    session.get(f"{api}/projects")

    assert stand_in.calls == {("modeler", "GET", "/api/v1/projects"): 1}


def test_calls_returns_copy(stand_in: PlatformStandIn, session: requests.Session, api: str) -> None:
    counts = stand_in.calls

    session.get(f"{api}/health")

    assert counts == {}
    assert stand_in.calls[("modeler", "GET", "/api/v1/health")] == 1


def test_latency_delays_every_reply(session: requests.Session) -> None:
    server = PlatformStandIn(token=TOKEN, latency_seconds=0.2)
    server.start()
    try:
        api = f"{server.site_url(SITE)}/api/v1"
        durations = []
        for path in ("/health", "/missing"):
            started = time.monotonic()
            session.get(f"{api}{path}")
            durations.append(time.monotonic() - started)
    finally:
        server.stop()

    assert durations[0] >= 0.2
    assert durations[1] >= 0.2


def test_latency_waits_after_handling(
        session: requests.Session) -> None:
    server = PlatformStandIn(token=TOKEN, latency_seconds=0.5)
    server.start()
    try:
        api = f"{server.site_url(SITE)}/api/v1"
        sent = threading.Thread(target=create_project, args=(session, api, "early"))
        started = time.monotonic()
        sent.start()
        while not server.projects(SITE) and time.monotonic() - started < 5:
            time.sleep(0.01)
        seen_after = time.monotonic() - started
        sent.join()
        replied_after = time.monotonic() - started
    finally:
        server.stop()

    # The project exists well before the reply leaves, and the reply waits out the latency.
    assert seen_after < 0.4
    assert replied_after >= 0.5


def test_wait_until_past_deadline_returns() -> None:
    started = time.monotonic()
    wait_until(started - 10)
    wait_until(started + 0.05)

    assert 0.05 <= time.monotonic() - started < 1


def test_concurrent_creates_get_unique_ids(stand_in: PlatformStandIn, api: str) -> None:
    def create_many(worker: int) -> None:
        with requests.Session() as worker_session:
            worker_session.headers["Authorization"] = f"Bearer {TOKEN}"
            for index in range(10):
                create_project(worker_session, api, f"w{worker}-{index}")

    threads = [threading.Thread(target=create_many, args=(worker,)) for worker in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    projects = stand_in.projects(SITE)
    assert len(projects) == 50
    assert len({project["id"] for project in projects}) == 50
    assert len({project["name"] for project in projects}) == 50
