"""Tests of the `Emr` wrapper against moto, and of the sandbox's RunJobFlow check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from rpa.clients import errors
from rpa.clients.aws import ClusterRequest, Emr
from rpa.sandbox.emr import end_as_spot_loss, register_checks
from rpa.settings import Settings

REGION = "ap-northeast-2"
TAGS = (("managed-by", "accuinsight-rpa"), ("rpa:account", "trial_user03"),
        ("rpa:cluster", "spark"))


def request(**changes: object) -> ClusterRequest:
    values: dict[str, object] = {
        "name": "rpa-trial_user03/spark", "release_label": "emr-7.2.0",
        "applications": ("Spark", "Hive"), "master_instance_type": "m5.xlarge",
        "core_instance_type": "m5.xlarge", "core_count": 2, "market": "SPOT", "tags": TAGS}
    values.update(changes)
    return ClusterRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def emr(session: boto3.Session) -> Emr:
    return Emr(session, Settings(aws_region=REGION))


def test_run_job_flow_starts_waiting_cluster(emr: Emr, session: boto3.Session) -> None:
    cluster_id = emr.run_job_flow(request())

    described = emr.describe_cluster(cluster_id)
    groups = session.client("emr").list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]

    assert described.name == "rpa-trial_user03/spark"
    assert described.state == "WAITING"
    assert described.tags == tuple(sorted(TAGS))
    assert described.tag("rpa:account") == "trial_user03"
    assert sorted((g["InstanceGroupType"], g["Market"], g["RequestedInstanceCount"])
                  for g in groups) == [("CORE", "SPOT", 2), ("MASTER", "SPOT", 1)]


def test_list_clusters_filters_states_and_time(emr: Emr) -> None:
    kept = emr.run_job_flow(request())
    ended = emr.run_job_flow(request(name="rpa-trial_user04/spark"))
    emr.terminate_cluster(ended)
    now = dt.datetime.now(dt.UTC)

    active = emr.list_clusters(["WAITING"])
    terminated = emr.list_clusters(["TERMINATED"], created_after=now - dt.timedelta(hours=1))
    later = emr.list_clusters(["TERMINATED"], created_after=now + dt.timedelta(hours=1))

    assert [cluster.id for cluster in active] == [kept]
    assert active[0].created_at.tzinfo is not None
    assert active[0].tags == ()
    assert [cluster.id for cluster in terminated] == [ended]
    assert later == []


def test_list_clusters_reads_state_change_reason(emr: Emr) -> None:
    cluster_id = emr.run_job_flow(request())
    end_as_spot_loss(cluster_id)

    [ended] = emr.list_clusters(["TERMINATED_WITH_ERRORS"])

    assert ended.id == cluster_id
    assert ended.state_change_message == "The master node was terminated"
    assert ended.state_change_code is None


def test_describe_unknown_cluster_raises(emr: Emr) -> None:
    with pytest.raises(errors.ClientError) as caught:
        emr.describe_cluster("j-MISSING")

    assert "DescribeCluster on j-MISSING" in str(caught.value)


def test_sandbox_check_rejects_instance_type(session: boto3.Session) -> None:
    register_checks(session, None)
    emr = Emr(session, Settings(aws_region=REGION))

    with pytest.raises(errors.InvalidRequest) as caught:
        emr.run_job_flow(request(core_instance_type="m5.huge"))

    assert "ValidationException" in str(caught.value)
    assert "m5.huge" in str(caught.value)
    assert emr.list_clusters(["WAITING", "STARTING"]) == []


def test_sandbox_check_rejects_release_label(session: boto3.Session) -> None:
    register_checks(session, None)
    emr = Emr(session, Settings(aws_region=REGION))

    with pytest.raises(errors.InvalidRequest) as caught:
        emr.run_job_flow(request(release_label="emr-9.9.9"))

    assert "emr-9.9.9" in str(caught.value)
