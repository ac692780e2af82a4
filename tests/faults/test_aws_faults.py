"""AWS faults: throttling that botocore retries (standard mode), throttling past the retries,
a create that is never retried, and AccessDenied naming the action and the resource."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import AwsFaults, JobRunner, aws_client

from rpa.sandbox.runtime import Servers

# The worker-node group of trial_user03 in the examples, the one that core time scales out
# in the small inventory.
GROUP = "eks-trial-user03-workers"


def test_throttled_update_retried(sandbox: Servers, run_job: JobRunner, small_inventory: Path,
                                  aws_faults: AwsFaults) -> None:
    aws_faults.add("UpdateAutoScalingGroup", 400, "Throttling", match=GROUP, times=2)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 0, result.report.get("errors")
    sizes = [(a, status) for a, kind, _, status in result.outcomes()
             if kind == "asg.set_desired"]
    assert sizes == [("trial_user03", "done")]
    # Two throttled attempts, then the one that went through.
    assert aws_faults.attempts["UpdateAutoScalingGroup"] == 3
    group = aws_client(sandbox, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2


def test_throttled_listing_retried(sandbox: Servers, run_job: JobRunner, small_inventory: Path,
                                   aws_faults: AwsFaults) -> None:
    aws_faults.add("ListClusters", 400, "ThrottlingException", times=1)

    result = run_job("mcm", "--inventory", str(small_inventory))

    assert result.status == 0, result.report.get("errors")
    assert ("trial_user03", "cluster.create", "done") in [
        (a, kind, status) for a, kind, _, status in result.outcomes()]
    assert aws_faults.attempts["ListClusters"] >= 2


def test_throttled_past_retries_fails(sandbox: Servers, run_job: JobRunner,
                                      small_inventory: Path, aws_faults: AwsFaults,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_AWS_MAX_ATTEMPTS", "2")
    aws_faults.add("UpdateAutoScalingGroup", 400, "Throttling", match=GROUP, times=5)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 1
    failed = [a for a in result.report["actions"] if a["status"] == "failed"]
    assert [(a["account"], a["kind"], a["target"]) for a in failed] == [
        ("trial_user03", "asg.set_desired", GROUP)]
    assert (f"autoscaling UpdateAutoScalingGroup on {GROUP} failed: Throttling"
            in failed[0]["error"])
    assert result.statuses("trial_user01") == {"done"}


def test_create_cluster_never_retried(sandbox: Servers, run_job: JobRunner,
                                      small_inventory: Path, aws_faults: AwsFaults) -> None:
    aws_faults.add("RunJobFlow", 400, "ThrottlingException", times=1)

    result = run_job("mcm", "--inventory", str(small_inventory))
    again = run_job("mcm", "--inventory", str(small_inventory))

    assert result.status == 1
    failed = [a for a in result.report["actions"] if a["status"] == "failed"]
    assert [(a["account"], a["kind"]) for a in failed] == [("trial_user03", "cluster.create")]
    assert "emr RunJobFlow on rpa-trial_user03/spark failed: ThrottlingException" in \
        failed[0]["error"]
    # One attempt in the failed run and one in the next: RunJobFlow has no idempotency
    # token, so a retry after a lost reply could start a second cluster.
    assert aws_faults.attempts["RunJobFlow"] == 2
    assert again.status == 0
    active = aws_client(sandbox, "emr").list_clusters(
        ClusterStates=["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"])["Clusters"]
    assert [c["Name"] for c in active] == ["rpa-trial_user03/spark"]


@pytest.mark.parametrize(("job", "operation", "code", "match", "account", "kind", "named"), [
    # the worker-node group may not be scaled
    ("modeler", "UpdateAutoScalingGroup", "AccessDenied", GROUP, "trial_user03",
     "asg.set_desired", f"autoscaling UpdateAutoScalingGroup on {GROUP} failed: AccessDenied"),
    # the bucket may not be created
    ("modeler", "CreateBucket", "AccessDenied", "accuinsight-trial-user01", "trial_user01",
     "bucket.create", "s3 CreateBucket on accuinsight-trial-user01 failed: AccessDenied"),
    # the IAM role may not be created
    ("modeler", "CreateRole", "AccessDenied", "trial-trial-user03", "trial_user03",
     "iam.create", "iam CreateRole on trial-trial-user03 failed: AccessDenied"),
    # the cluster may not be started
    ("mcm", "RunJobFlow", "AccessDeniedException", "trial_user03", "trial_user03",
     "cluster.create", "emr RunJobFlow on rpa-trial_user03/spark failed: AccessDeniedException"),
])
def test_access_denied_names_action(sandbox: Servers, run_job: JobRunner,
                                    small_inventory: Path, aws_faults: AwsFaults, job: str,
                                    operation: str, code: str, match: str, account: str,
                                    kind: str, named: str) -> None:
    aws_faults.add(operation, 403 if code == "AccessDenied" else 400, code, match=match)

    result = run_job(job, "--inventory", str(small_inventory))

    assert result.status == 1
    failed = [a for a in result.report["actions"] if a["status"] == "failed"]
    assert [(a["account"], a["kind"]) for a in failed] == [(account, kind)]
    assert named in failed[0]["error"]
    others = {a["account"] for a in result.report["actions"]} - {account}
    assert others
    for other in others:
        assert "failed" not in result.statuses(other)
