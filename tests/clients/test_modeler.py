"""Tests of `ModelerClient` against the platform stand-in over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rpa.clients import errors
from rpa.clients.http import JsonApi
from rpa.clients.modeler import ItemKind, ModelerClient, RemoteItem, RemoteProject
from rpa.sandbox.platform import PlatformStandIn

TOKEN = "modeler-test-token"
SITE = "modeler-a.trial.example"
OTHER_SITE = "modeler-b.trial.example"
RESOURCES = {"cpu": 4, "memory_gib": 16, "gpu": 0, "storage_gib": 50}


@pytest.fixture
def stand_in() -> Iterator[PlatformStandIn]:
    server = PlatformStandIn(token=TOKEN, port=0)
    server.start()
    yield server
    server.stop()


def make_client(stand_in: PlatformStandIn, site: str = SITE) -> ModelerClient:
    return ModelerClient(JsonApi(stand_in.site_url(site), service="modeler", token=TOKEN,
                                 timeout_seconds=5, retries=2, backoff_seconds=0))


@pytest.fixture
def modeler(stand_in: PlatformStandIn) -> Iterator[ModelerClient]:
    client = make_client(stand_in)
    yield client
    client.api.close()


def add_item(client: ModelerClient, kind: str, project_id: str, name: str) -> str:
    """Start a workspace or deployment as a user would. The client itself never starts one."""
    reply = client.api.request("POST", f"/api/v1/{kind}", idempotent=False,
                               body={"project_id": project_id, "name": name})
    item_id: str = reply["id"]
    return item_id


def test_create_project_returns_the_remote_project(modeler: ModelerClient,
                                                   stand_in: PlatformStandIn) -> None:
    project = modeler.create_project(name="고객-분석", owner="trial_user07", resources=RESOURCES)

    assert project == RemoteProject(project.id, "고객-분석", "trial_user07", RESOURCES)
    assert project.id.startswith("prj-")
    assert [p["name"] for p in stand_in.projects(SITE)] == ["고객-분석"]


def test_list_projects_reads_every_page_of_the_site(modeler: ModelerClient,
                                                    stand_in: PlatformStandIn) -> None:
    created = [modeler.create_project(name=f"p{index:03d}", owner="trial_user07",
                                      resources=RESOURCES) for index in range(505)]
    other = make_client(stand_in, OTHER_SITE)
    other.create_project(name="elsewhere", owner="trial_user08", resources=RESOURCES)
    stand_in.reset_calls()

    listed = modeler.list_projects()

    assert listed == created
    # 505 projects at the default of 500 per page, the largest the contract allows.
    assert stand_in.calls[("modeler", "GET", "/api/v1/projects")] == 2
    other.api.close()


def test_create_project_with_taken_name_raises_conflict(modeler: ModelerClient) -> None:
    modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)

    with pytest.raises(errors.Conflict) as caught:
        modeler.create_project(name="p1", owner="trial_user08", resources=RESOURCES)

    assert caught.value.status == 409
    assert "'p1' already exists" in str(caught.value)


def test_update_project_replaces_resources(modeler: ModelerClient, stand_in: PlatformStandIn
                                           ) -> None:
    project = modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)
    bigger = {"cpu": 8, "memory_gib": 32, "gpu": 1, "storage_gib": 100}

    updated = modeler.update_project(project.id, bigger)

    assert updated == RemoteProject(project.id, "p1", "trial_user07", bigger)
    assert stand_in.projects(SITE)[0]["resources"] == bigger


def test_update_missing_project_raises_not_found(modeler: ModelerClient) -> None:
    with pytest.raises(errors.NotFound) as caught:
        modeler.update_project("prj-999999", RESOURCES)

    assert caught.value.status == 404


def test_delete_project_removes_it(modeler: ModelerClient, stand_in: PlatformStandIn) -> None:
    keep = modeler.create_project(name="keep", owner="trial_user07", resources=RESOURCES)
    deleted = modeler.create_project(name="deleted", owner="trial_user07", resources=RESOURCES)

    modeler.delete_project(deleted.id)

    assert [p["id"] for p in stand_in.projects(SITE)] == [keep.id]
    with pytest.raises(errors.NotFound):
        modeler.delete_project(deleted.id)


def test_delete_project_with_workspaces_raises_conflict(modeler: ModelerClient) -> None:
    project = modeler.create_project(name="busy", owner="trial_user07", resources=RESOURCES)
    add_item(modeler, "workspaces", project.id, "ws")

    with pytest.raises(errors.Conflict, match="still contains workspaces"):
        modeler.delete_project(project.id)


@pytest.mark.parametrize("kind", ["workspaces", "deployments"])
def test_list_items_applies_status_and_project_filters(modeler: ModelerClient,
                                                       stand_in: PlatformStandIn,
                                                       kind: ItemKind) -> None:
    first = modeler.create_project(name="first", owner="trial_user07", resources=RESOURCES)
    second = modeler.create_project(name="second", owner="trial_user07", resources=RESOURCES)
    running_first = add_item(modeler, kind, first.id, "a")
    stopped_first = add_item(modeler, kind, first.id, "b")
    running_second = add_item(modeler, kind, second.id, "c")
    modeler.stop_item(kind, stopped_first)

    running = modeler.list_items(kind, status="RUNNING")
    running_in_first = modeler.list_items(kind, status="RUNNING", project_id=first.id)
    everything = modeler.list_items(kind)

    assert running == [RemoteItem(running_first, first.id, "a", "RUNNING"),
                       RemoteItem(running_second, second.id, "c", "RUNNING")]
    assert running_in_first == [RemoteItem(running_first, first.id, "a", "RUNNING")]
    assert [(item.id, item.status) for item in everything] == [
        (running_first, "RUNNING"), (stopped_first, "STOPPED"), (running_second, "RUNNING")]


def test_stop_item_stops_it_and_is_idempotent(modeler: ModelerClient, stand_in: PlatformStandIn
                                              ) -> None:
    project = modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)
    workspace = add_item(modeler, "workspaces", project.id, "ws")

    modeler.stop_item("workspaces", workspace)
    modeler.stop_item("workspaces", workspace)

    assert [w["status"] for w in stand_in.workspaces(SITE)] == ["STOPPED"]


def test_stop_item_is_retried_after_a_503(modeler: ModelerClient, stand_in: PlatformStandIn
                                          ) -> None:
    project = modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)
    deployment = add_item(modeler, "deployments", project.id, "dep")
    stand_in.fail_next(method="POST", path_contains="/stop", status=503)

    modeler.stop_item("deployments", deployment)

    assert [d["status"] for d in stand_in.deployments(SITE)] == ["STOPPED"]
    assert stand_in.calls[("modeler", "POST", "/api/v1/deployments/{item_id}/stop")] == 2


def test_delete_item_removes_it(modeler: ModelerClient, stand_in: PlatformStandIn) -> None:
    project = modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)
    workspace = add_item(modeler, "workspaces", project.id, "ws")

    modeler.delete_item("workspaces", workspace)

    assert stand_in.workspaces(SITE) == []


def test_project_reply_missing_a_field_raises_invalid_response(
    modeler: ModelerClient, stand_in: PlatformStandIn
) -> None:
    reply = {"id": "prj-000001", "name": "p1", "resources": RESOURCES}  # no owner
    stand_in.fail_next(method="POST", path_contains="/api/v1/projects", status=201,
                       body=json.dumps(reply))

    with pytest.raises(errors.InvalidResponse) as caught:
        modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)

    assert "'owner'" in str(caught.value)


def test_project_resources_missing_a_field_raise_invalid_response(
    modeler: ModelerClient, stand_in: PlatformStandIn
) -> None:
    project = modeler.create_project(name="p1", owner="trial_user07", resources=RESOURCES)
    page = {"items": [{"id": project.id, "name": "p1", "owner": "trial_user07",
                       "resources": {"cpu": 4, "memory_gib": 16, "gpu": 0}}],
            "page": 1, "per_page": 100, "total": 1}
    stand_in.fail_next(method="GET", path_contains="/api/v1/projects", status=200,
                       body=json.dumps(page))

    with pytest.raises(errors.InvalidResponse, match="'storage_gib'"):
        modeler.list_projects()


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"id": "ws-1", "project_id": "prj-1", "name": "a"}, "status"),  # status missing
        ({"id": "ws-1", "name": "a", "status": "RUNNING"}, "project_id"),  # project missing
        ({"id": 7, "project_id": "prj-1", "name": "a", "status": "RUNNING"}, "id"),  # int id
    ],
)
def test_item_reply_missing_a_field_raises_invalid_response(
    modeler: ModelerClient, stand_in: PlatformStandIn, item: dict[str, object], field: str
) -> None:
    page = {"items": [item], "page": 1, "per_page": 100, "total": 1}
    stand_in.fail_next(method="GET", path_contains="/api/v1/workspaces", status=200,
                       body=json.dumps(page))

    with pytest.raises(errors.InvalidResponse) as caught:
        modeler.list_items("workspaces", status="RUNNING")

    assert f"without a valid {field!r}" in str(caught.value)
