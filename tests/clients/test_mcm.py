"""Tests of `McmClient` against the platform stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rpa.clients import errors
from rpa.clients.http import JsonApi
from rpa.clients.mcm import ClusterSchedule, McmClient, McmCluster
from rpa.sandbox.platform import PlatformStandIn

TOKEN = "mcm-test-token"
SITE = "mcm.trial.example"
REGION = "ap-northeast-2"
SCHEDULE = ClusterSchedule("trial_user03", "MON-FRI", "09:00", "18:00", "Asia/Seoul", "KR",
                           ("2026-12-24", "2026-12-31"))


@pytest.fixture
def stand_in() -> Iterator[PlatformStandIn]:
    server = PlatformStandIn(token=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mcm(stand_in: PlatformStandIn) -> Iterator[McmClient]:
    client = McmClient(JsonApi(stand_in.site_url(SITE), service="mcm", token=TOKEN,
                               timeout_seconds=5, retries=2, backoff_seconds=0))
    yield client
    client.api.close()


def test_register_then_list(mcm: McmClient) -> None:
    created = mcm.register_cluster(cluster_id="j-1", name="rpa-trial_user03/spark",
                                   region=REGION)

    assert created is True
    assert mcm.list_clusters() == [
        McmCluster("j-1", "rpa-trial_user03/spark", "aws-emr", REGION, None)]


def test_register_again_returns_false(mcm: McmClient, stand_in: PlatformStandIn) -> None:
    mcm.register_cluster(cluster_id="j-1", name="rpa-trial_user03/spark", region=REGION)

    again = mcm.register_cluster(cluster_id="j-1", name="rpa-trial_user03/spark",
                                 region=REGION)

    assert again is False
    assert len(stand_in.mcm.clusters(SITE)) == 1


def test_register_is_not_retried(mcm: McmClient, stand_in: PlatformStandIn) -> None:
    stand_in.fail_next(method="POST", path_contains="/api/v1/clusters", status=503)

    with pytest.raises(errors.Unavailable) as caught:
        mcm.register_cluster(cluster_id="j-1", name="n", region=REGION)

    assert caught.value.status == 503
    assert stand_in.calls[("mcm", "POST", "/api/v1/clusters")] == 1
    assert stand_in.mcm.clusters(SITE) == []


def test_list_clusters_is_retried(mcm: McmClient, stand_in: PlatformStandIn) -> None:
    mcm.register_cluster(cluster_id="j-1", name="n", region=REGION)
    stand_in.fail_next(method="GET", path_contains="/api/v1/clusters", status=503)

    listed = mcm.list_clusters()

    assert [cluster.cluster_id for cluster in listed] == ["j-1"]
    assert stand_in.calls[("mcm", "GET", "/api/v1/clusters")] == 2


def test_list_clusters_reads_every_page(mcm: McmClient, stand_in: PlatformStandIn) -> None:
    for index in range(501):
        mcm.register_cluster(cluster_id=f"j-{index:04d}", name="n", region=REGION)
    stand_in.reset_calls()

    listed = mcm.list_clusters()

    assert len(listed) == 501
    assert listed[-1].cluster_id == "j-0500"
    # 501 clusters at 500 a page.
    assert stand_in.calls[("mcm", "GET", "/api/v1/clusters")] == 2


def test_assign_and_unassign(mcm: McmClient) -> None:
    mcm.register_cluster(cluster_id="j-1", name="n", region=REGION)

    assigned = mcm.assign_cluster("j-1", "trial_user03")
    mcm.unassign_cluster("j-1")

    assert assigned.account == "trial_user03"
    assert mcm.list_clusters()[0].account is None


def test_assign_unknown_cluster_raises_not_found(mcm: McmClient) -> None:
    with pytest.raises(errors.NotFound) as caught:
        mcm.assign_cluster("j-missing", "trial_user03")

    assert caught.value.status == 404
    assert "j-missing" in str(caught.value)


def test_unassign_unknown_cluster_is_quiet(mcm: McmClient,
                                           stand_in: PlatformStandIn) -> None:
    mcm.unassign_cluster("j-missing")

    assert stand_in.calls[("mcm", "DELETE", "/api/v1/clusters/{cluster_id}/assignment")] == 1


def test_schedule_put_list_delete(mcm: McmClient) -> None:
    stored = mcm.put_schedule(SCHEDULE)
    listed = mcm.list_schedules()
    mcm.delete_schedule("trial_user03")
    mcm.delete_schedule("trial_user03")

    assert stored == SCHEDULE
    assert listed == [SCHEDULE]
    assert mcm.list_schedules() == []


def test_cluster_reply_without_account_type(mcm: McmClient,
                                            stand_in: PlatformStandIn) -> None:
    body = ('{"items": [{"cluster_id": "j-1", "name": "n", "provider": "aws-emr", '
            '"region": "r", "account": 7}], "page": 1, "per_page": 500, "total": 1}')
    stand_in.fail_next(method="GET", path_contains="/api/v1/clusters", status=200, body=body)

    with pytest.raises(errors.InvalidResponse) as caught:
        mcm.list_clusters()

    assert "account" in str(caught.value)


def test_schedule_reply_missing_field(mcm: McmClient, stand_in: PlatformStandIn) -> None:
    body = ('{"items": [{"account": "trial_user03", "days": "MON-FRI"}], "page": 1, '
            '"per_page": 500, "total": 1}')
    stand_in.fail_next(method="GET", path_contains="/api/v1/cluster-schedules", status=200,
                       body=body)

    with pytest.raises(errors.InvalidResponse) as caught:
        mcm.list_schedules()

    assert "'start'" in str(caught.value)


def test_token_never_in_error(stand_in: PlatformStandIn) -> None:
    client = McmClient(JsonApi(stand_in.site_url(SITE), service="mcm", token="wrong-token",
                               timeout_seconds=5, retries=0, backoff_seconds=0))

    with pytest.raises(errors.Unauthorized) as caught:
        client.list_clusters()

    assert "wrong-token" not in str(caught.value)
    client.api.close()
