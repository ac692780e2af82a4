"""Tests of the MCM stand-in and the sandbox's EMR control route over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rpa.sandbox.platform import PlatformStandIn

TOKEN = "test-token"
SITE = "mcm.trial.example"
OTHER_SITE = "mcm-b.trial.example"
SCHEDULE = {"days": "MON-FRI", "start": "09:00", "end": "18:00", "timezone": "Asia/Seoul",
            "holidays": "KR", "exclude_dates": ["2026-12-24"]}


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


def register(session: requests.Session, api: str, cluster_id: str,
             name: str = "rpa-trial_user03/spark") -> dict[str, Any]:
    response = session.post(f"{api}/clusters", json={
        "cluster_id": cluster_id, "name": name, "provider": "aws-emr",
        "region": "ap-northeast-2"})
    assert response.status_code == 201, response.text
    cluster: dict[str, Any] = response.json()
    return cluster


def error_code(response: requests.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_register_returns_unassigned_cluster(session: requests.Session, api: str) -> None:
    cluster = register(session, api, "j-1")

    assert {key: cluster[key] for key in ("cluster_id", "name", "provider", "region")} == {
        "cluster_id": "j-1", "name": "rpa-trial_user03/spark", "provider": "aws-emr",
        "region": "ap-northeast-2"}
    assert cluster["account"] is None
    assert cluster["registered_at"].endswith("Z")


def test_register_twice_is_conflict(session: requests.Session, api: str,
                                    stand_in: PlatformStandIn) -> None:
    register(session, api, "j-1")

    response = session.post(f"{api}/clusters", json={
        "cluster_id": "j-1", "name": "other", "provider": "aws-emr", "region": "us-east-1"})

    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert [c["name"] for c in stand_in.mcm.clusters(SITE)] == ["rpa-trial_user03/spark"]


@pytest.mark.parametrize("body", [
    # the region is missing
    {"cluster_id": "j-1", "name": "n", "provider": "aws-emr"},
    # a blank cluster id
    {"cluster_id": " ", "name": "n", "provider": "aws-emr", "region": "r"},
    # a field the contract does not have
    {"cluster_id": "j-1", "name": "n", "provider": "aws-emr", "region": "r", "size": 3},
])
def test_register_rejects_invalid_body(session: requests.Session, api: str,
                                       body: dict[str, Any]) -> None:
    response = session.post(f"{api}/clusters", json=body)

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


def test_list_clusters_pages_and_filters(session: requests.Session, api: str) -> None:
    for index in range(3):
        register(session, api, f"j-{index}")
    assert session.put(f"{api}/clusters/j-2/assignment",
                       json={"account": "trial_user07"}).status_code == 200

    first = session.get(f"{api}/clusters", params={"per_page": 2}).json()
    second = session.get(f"{api}/clusters", params={"per_page": 2, "page": 2}).json()
    assigned = session.get(f"{api}/clusters", params={"account": "trial_user07"}).json()

    assert [c["cluster_id"] for c in first["items"]] == ["j-0", "j-1"]
    assert first["total"] == 3
    assert [c["cluster_id"] for c in second["items"]] == ["j-2"]
    assert [c["cluster_id"] for c in assigned["items"]] == ["j-2"]


def test_assign_and_unassign(session: requests.Session, api: str,
                             stand_in: PlatformStandIn) -> None:
    register(session, api, "j-1")

    assigned = session.put(f"{api}/clusters/j-1/assignment", json={"account": "trial_user03"})
    again = session.put(f"{api}/clusters/j-1/assignment", json={"account": "trial_user04"})
    after_assign = stand_in.mcm.clusters(SITE)[0]["account"]
    unassigned = session.delete(f"{api}/clusters/j-1/assignment")
    unassigned_again = session.delete(f"{api}/clusters/j-1/assignment")

    assert assigned.status_code == 200
    assert assigned.json()["account"] == "trial_user03"
    assert again.json()["account"] == "trial_user04"
    assert after_assign == "trial_user04"
    assert unassigned.status_code == 204
    assert unassigned_again.status_code == 204
    assert stand_in.mcm.clusters(SITE)[0]["account"] is None


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_assignment_of_unknown_cluster_is_404(session: requests.Session, api: str,
                                              method: str) -> None:
    response = session.request(method, f"{api}/clusters/j-missing/assignment",
                               json={"account": "trial_user03"})

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_sites_are_separate(session: requests.Session, api: str,
                            stand_in: PlatformStandIn) -> None:
    register(session, api, "j-1")

    other = session.get(f"{stand_in.site_url(OTHER_SITE)}/api/v1/clusters").json()

    assert other["items"] == []
    assert stand_in.mcm.clusters(OTHER_SITE) == []


def test_schedule_put_list_delete(session: requests.Session, api: str,
                                  stand_in: PlatformStandIn) -> None:
    put = session.put(f"{api}/accounts/trial_user03/cluster-schedule", json=SCHEDULE)
    replaced = session.put(f"{api}/accounts/trial_user03/cluster-schedule",
                           json={**SCHEDULE, "end": "24:00", "holidays": None})
    listed = session.get(f"{api}/cluster-schedules").json()
    deleted = session.delete(f"{api}/accounts/trial_user03/cluster-schedule")
    deleted_again = session.delete(f"{api}/accounts/trial_user03/cluster-schedule")

    assert put.status_code == 200
    assert put.json() == {"account": "trial_user03", **SCHEDULE}
    assert replaced.json()["end"] == "24:00"
    assert listed["items"] == [{"account": "trial_user03", **SCHEDULE, "end": "24:00",
                                "holidays": None}]
    assert deleted.status_code == 204
    assert deleted_again.status_code == 404
    assert stand_in.mcm.schedules(SITE) == {}


def test_schedule_defaults_optional_fields(session: requests.Session, api: str) -> None:
    body = {key: SCHEDULE[key] for key in ("days", "start", "end", "timezone")}

    reply = session.put(f"{api}/accounts/trial_user03/cluster-schedule", json=body)

    assert reply.status_code == 200
    assert reply.json()["holidays"] is None
    assert reply.json()["exclude_dates"] == []


@pytest.mark.parametrize("change", [
    # a start time that is not HH:MM
    {"start": "9:00"},
    # an excluded date in another format
    {"exclude_dates": ["24.12.2026"]},
    # holidays given as a number
    {"holidays": 82},
    # the days missing
    {"days": None},
])
def test_schedule_rejects_invalid_body(session: requests.Session, api: str,
                                       change: dict[str, Any]) -> None:
    body = {key: value for key, value in {**SCHEDULE, **change}.items() if value is not None}

    response = session.put(f"{api}/accounts/trial_user03/cluster-schedule", json=body)

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


def test_calls_counted_under_mcm(session: requests.Session, api: str,
                                 stand_in: PlatformStandIn) -> None:
    register(session, api, "j-1")
    session.get(f"{api}/clusters")
    session.get(f"{api}/clusters", params={"page": 2})

    calls = stand_in.calls

    assert calls[("mcm", "POST", "/api/v1/clusters")] == 1
    assert calls[("mcm", "GET", "/api/v1/clusters")] == 2


def test_missing_token_is_401(api: str) -> None:
    response = requests.get(f"{api}/clusters", timeout=5)

    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


def test_interrupt_unknown_cluster_is_404(session: requests.Session,
                                          stand_in: PlatformStandIn) -> None:
    url = f"{stand_in.site_url('aws')}/api/v1/sandbox/emr/clusters/j-missing/interrupt"

    response = session.post(url)

    assert response.status_code == 404
    assert "j-missing" in response.json()["error"]["message"]
