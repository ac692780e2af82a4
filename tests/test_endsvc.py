"""The end-of-service job: releases exactly the expired accounts, resumably, without losing
a password."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import responses
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from rpa import endsvc
from rpa.cli import main
from rpa.clients import errors
from rpa.clients.aws import S3
from rpa.clients.cloudz import CloudzClient
from rpa.clients.http import JsonApi
from rpa.inventory import load_file, validate_records
from rpa.passwords import PasswordPolicy, generate_password, rotate_password
from rpa.records import FileRecordStore
from rpa.sandbox.runtime import AWS_KEY, SANDBOX_URLS, TOKEN, Servers, site_key
from rpa.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
# 2026-11-20 (a Friday) is inside the periods of trial_user36 (ends 12-01) and trial_user03.
IN_PERIOD = "2026-11-20T10:00+09:00"
# On 2026-12-04 trial_user34 … 38 have expired; trial_user03 is still in use.
RELEASE_DAY = "2026-12-04T10:00+09:00"
EXPIRED = ["trial_user34", "trial_user35", "trial_user36", "trial_user37", "trial_user38"]


class SimulatedCrash(BaseException):
    """Stands for the process dying: nothing in the job may catch it."""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A copy of the examples that the jobs may write back to."""
    path = tmp_path / "inventory.yaml"
    path.write_text(EXAMPLES.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], job: str, inventory: Path, now: str,
        *args: str) -> tuple[int, dict[str, Any]]:
    status = main([job, "--sandbox", "--output", "json", "--inventory", str(inventory),
                   "--now", now, *args])
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else {}


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _post(sandbox: Servers, site: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(f"{sandbox.endpoints.site_url(site)}{path}", json=body,
                          headers=_headers(), timeout=5)
    reply.raise_for_status()
    result: dict[str, Any] = reply.json()
    return result


def _aws(sandbox: Servers, service: str) -> Any:
    return boto3.client(service, region_name="ap-northeast-2",
                        endpoint_url=sandbox.endpoints.aws_url, aws_access_key_id=AWS_KEY,
                        aws_secret_access_key=AWS_KEY)


def _record(inventory: Path, folder: str, account: str) -> dict[str, Any]:
    record: dict[str, Any] = load_file(inventory)[folder][account]
    return record


def set_up_trials(sandbox: Servers, capsys: pytest.CaptureFixture[str], inventory: Path,
                  accounts: list[str]) -> None:
    """Give the accounts what a trial leaves behind: the jobs' resources and users' data."""
    flags = [arg for name in accounts for arg in ("--account", name)]
    assert run(capsys, "modeler", inventory, IN_PERIOD, *flags)[0] == 0
    assert run(capsys, "mcm", inventory, IN_PERIOD, *flags)[0] == 0
    raw = load_file(inventory)
    s3 = _aws(sandbox, "s3")
    for name in accounts:
        site = raw["modeler"][name]["site"]
        project = next(p for p in sandbox.platform.projects(site_key(site))
                       if p["owner"] == name)
        for kind in ("workspaces", "deployments", "automl-experiments", "analysis-images"):
            _post(sandbox, site, f"/api/v1/{kind}", {"project_id": project["id"],
                                                     "name": f"{kind}-of-{name}"})
        for kind in ("pipeline-projects", "workflows", "datasets", "models"):
            _post(sandbox, SANDBOX_URLS["pipeline_url"], f"/api/v1/{kind}",
                  {"account": name, "name": f"{kind}-of-{name}"})
        bucket = f"accuinsight-{name.replace('_', '-')}"
        for index in range(3):
            s3.put_object(Bucket=bucket, Key=f"data/{index}.csv", Body=b"a,b\n")


def test_dry_run_lists_only_expired(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                                    inventory: Path) -> None:
    set_up_trials(sandbox, capsys, inventory, ["trial_user36", "trial_user03"])

    status, report = run(capsys, "endsvc", inventory, RELEASE_DAY, "--dry-run")

    assert status == 0
    assert {a["account"] for a in report["actions"]} == set(EXPIRED)
    kinds36 = [a["kind"] for a in report["actions"] if a["account"] == "trial_user36"]
    for kind in ("project.item_delete", "project.delete", "pipeline.item_delete",
                 "pipeline.storage_delete", "cluster.terminate", "bucket.empty",
                 "group.remove", "password.rotate", "account.mark_released"):
        assert kind in kinds36
    empty = [a["detail"] for a in report["actions"] if a["kind"] == "bucket.empty"]
    assert empty == ["3 object versions, 0 delete markers, 0 unfinished uploads"]
    assert kinds36[-1] == "account.mark_released"
    # Nothing changed.
    assert _record(inventory, "password", "trial_user36").get("released_at") is None
    assert [p["owner"] for p in sandbox.platform.projects(site_key(
        _record(inventory, "modeler", "trial_user36")["site"]))].count("trial_user36") >= 1


def test_release_takes_only_what_account_owns(sandbox: Servers,
                                              capsys: pytest.CaptureFixture[str],
                                              inventory: Path) -> None:
    set_up_trials(sandbox, capsys, inventory, ["trial_user36", "trial_user03"])
    site36 = _record(inventory, "modeler", "trial_user36")["site"]
    outsider = _post(sandbox, site36, "/api/v1/projects", {
        "name": "outsider-project", "owner": "somebody",
        "resources": {"cpu": 1, "memory_gib": 1, "gpu": 0, "storage_gib": 1}})
    before = dict(_record(inventory, "password", "trial_user36"))

    status, report = run(capsys, "endsvc", inventory, RELEASE_DAY)
    again_status, again = run(capsys, "endsvc", inventory, RELEASE_DAY)

    assert status == 0, report["errors"]
    assert again_status == 0
    assert again["actions"] == []
    projects = sandbox.platform.projects(site_key(site36))
    assert [p["owner"] for p in projects if p["owner"] == "trial_user36"] == []
    assert outsider["id"] in {p["id"] for p in projects}
    for kind in ("workflows", "datasets", "models", "pipeline-projects"):
        left = sandbox.platform.accounts.pipeline_items(site_key(SANDBOX_URLS["pipeline_url"]),
                                                        kind)
        assert {item["account"] for item in left} == {"trial_user03"}
    storages = sandbox.platform.accounts.storages(site_key(SANDBOX_URLS["pipeline_url"]))
    assert {s["account"] for s in storages} == {"trial_user03"}
    members = sandbox.platform.accounts.members(site_key(SANDBOX_URLS["portal_url"]),
                                                "trial-users")
    assert members == ["trial_user03"]
    s3 = _aws(sandbox, "s3")
    assert s3.list_object_versions(Bucket="accuinsight-trial-user36").get("Versions") is None
    assert len(s3.list_object_versions(Bucket="accuinsight-trial-user03")["Versions"]) == 3
    emr = _aws(sandbox, "emr")
    active = emr.list_clusters(ClusterStates=["STARTING", "BOOTSTRAPPING", "RUNNING",
                                              "WAITING"])["Clusters"]
    assert [c["Name"] for c in active if "trial_user36" in c["Name"]] == []
    assert [c["Name"] for c in active if "trial_user03" in c["Name"]] != []
    group = _aws(sandbox, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["eks-trial-user36-workers"])["AutoScalingGroups"][0]
    assert (group["DesiredCapacity"], group["MinSize"]) == (0, 0)
    _assert_released(sandbox, inventory, "trial_user36", before)


def _assert_released(sandbox: Servers, inventory: Path, account: str,
                     before: dict[str, Any]) -> None:
    after = _record(inventory, "password", account)
    cloudz = sandbox.platform.accounts.cloudz_password(site_key(SANDBOX_URLS["cloudz_url"]),
                                                       before["username"])
    assert after["password"] == cloudz
    assert after["password"] != before["password"]
    assert "pending_password" not in after
    assert after.get("released_at")
    for field in ("username", "email", "owner", "purpose", "start_date", "end_date"):
        assert after[field] == before[field]


def _crash_after(monkeypatch: pytest.MonkeyPatch, count: int) -> list[str]:
    """Make the process die right after the `count`-th applied action; return the kinds."""
    applied: list[str] = []
    real = endsvc.apply_action

    def crashing(run_: Any, action: Any) -> None:
        real(run_, action)
        applied.append(action.kind.value)
        if len(applied) == count:
            raise SimulatedCrash(action.kind.value)

    monkeypatch.setattr(endsvc, "apply_action", crashing)
    return applied


def _release_steps(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                   inventory: Path) -> int:
    status, report = run(capsys, "endsvc", inventory, RELEASE_DAY, "--dry-run", "--account",
                         "trial_user36")
    assert status == 0
    return len(report["actions"])


def test_crash_after_every_step_then_rerun(sandbox: Servers,
                                           capsys: pytest.CaptureFixture[str],
                                           inventory: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run dies right after its first action, until a run finds nothing left to do.

    A rerun plans only what is left, so its first action is the next step of the release:
    the chain puts a crash after every step, each followed by a rerun.
    """
    set_up_trials(sandbox, capsys, inventory, ["trial_user36"])
    steps = _release_steps(sandbox, capsys, inventory)
    before = dict(_record(inventory, "password", "trial_user36"))
    crashed_after: list[str] = []

    for _ in range(steps + 1):
        with monkeypatch.context() as patch:
            applied = _crash_after(patch, 1)
            try:
                main(["endsvc", "--sandbox", "--inventory", str(inventory), "--now",
                      RELEASE_DAY, "--account", "trial_user36"])
            except SimulatedCrash:
                crashed_after += applied
            else:
                break
        capsys.readouterr()
    capsys.readouterr()
    status, again = run(capsys, "endsvc", inventory, RELEASE_DAY, "--account", "trial_user36")

    assert steps >= 15
    # Every step of the release was followed by a crash, the last one included.
    assert len(crashed_after) == steps
    assert crashed_after[-1] == "account.mark_released"
    assert status == 0
    assert again["actions"] == []
    _assert_released(sandbox, inventory, "trial_user36", before)
    site = _record(inventory, "modeler", "trial_user36")["site"]
    assert "trial_user36" not in {p["owner"] for p in sandbox.platform.projects(site_key(site))}


@pytest.mark.parametrize("crash_point", ["after_pending", "after_cloudz", "after_promote"])
def test_crash_inside_password_rotation(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                                        inventory: Path, monkeypatch: pytest.MonkeyPatch,
                                        crash_point: str) -> None:
    before = dict(_record(inventory, "password", "trial_user38"))
    real_change = CloudzClient.change_password
    real_update = FileRecordStore.update
    writes: list[str] = []

    def change(self: CloudzClient, username: str, *, current: str, new: str) -> None:
        if crash_point == "after_pending":
            raise SimulatedCrash("before CloudZ")
        real_change(self, username, current=current, new=new)
        if crash_point == "after_cloudz":
            raise SimulatedCrash("after CloudZ")

    def update(self: FileRecordStore, path: str, change_fields: Any) -> Any:
        result = real_update(self, path, change_fields)
        writes.append(path)
        if crash_point == "after_promote" and len(writes) == 2:
            raise SimulatedCrash("after promote")
        return result

    with monkeypatch.context() as patch:
        patch.setattr(CloudzClient, "change_password", change)
        patch.setattr(FileRecordStore, "update", update)
        with pytest.raises(SimulatedCrash):
            main(["endsvc", "--sandbox", "--inventory", str(inventory), "--now", RELEASE_DAY,
                  "--account", "trial_user38"])
    capsys.readouterr()
    middle = _record(inventory, "password", "trial_user38")
    cloudz = sandbox.platform.accounts.cloudz_password(site_key(SANDBOX_URLS["cloudz_url"]),
                                                       "trial_user38")
    # At the crash, the record holds a password that CloudZ accepts.
    assert cloudz in (middle["password"], middle.get("pending_password"), None)

    status, report = run(capsys, "endsvc", inventory, RELEASE_DAY, "--account", "trial_user38")

    assert status == 0, report
    _assert_released(sandbox, inventory, "trial_user38", before)


def test_versioned_bucket_emptied() -> None:
    with mock_aws():
        session = boto3.Session(region_name="ap-northeast-2")
        client = session.client("s3")
        bucket = "accuinsight-trial-user36"
        client.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        client.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration={"Status": "Enabled"})
        for index in range(1200):
            key = f"part/{index:05d}"
            client.put_object(Bucket=bucket, Key=key, Body=b"1")
            client.put_object(Bucket=bucket, Key=key, Body=b"2")
        for index in range(0, 1200, 4):
            client.delete_object(Bucket=bucket, Key=f"part/{index:05d}")
        s3 = S3(session, Settings())
        assert s3.count_contents(bucket) == (2400, 300, 0)

        deleted = s3.empty_bucket(bucket)

        assert deleted == 2700
        listing = client.list_object_versions(Bucket=bucket)
        assert listing.get("Versions") is None
        assert listing.get("DeleteMarkers") is None
        assert s3.count_contents(bucket) == (0, 0, 0)


def test_delete_objects_errors_fail_step() -> None:
    s3 = S3(boto3.Session(aws_access_key_id="x", aws_secret_access_key="x",
                          region_name="ap-northeast-2"), Settings())
    with Stubber(s3._client) as stub:
        stub.add_response("list_multipart_uploads", {"Bucket": "b", "Uploads": []})
        stub.add_response("list_object_versions", {
            "Versions": [{"Key": "a", "VersionId": "1"}, {"Key": "b", "VersionId": "2"}]})
        stub.add_response("delete_objects", {
            "Deleted": [{"Key": "a", "VersionId": "1"}],
            "Errors": [{"Key": "b", "VersionId": "2", "Code": "AccessDenied",
                        "Message": "Access Denied"}]})
        with pytest.raises(errors.PartialFailure, match=r"1 of 2 versions failed.*AccessDenied"):
            s3.empty_bucket("b")


def test_records_incomplete_release_nothing(sandbox: Servers,
                                            capsys: pytest.CaptureFixture[str],
                                            inventory: Path) -> None:
    set_up_trials(sandbox, capsys, inventory, ["trial_user36"])
    raw = load_file(inventory)
    raw["modeler"]["trial_user05"]["schedule"]["start"] = "25:00"
    inventory.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    status, report = run(capsys, "endsvc", inventory, RELEASE_DAY)

    assert status == 1
    statuses = {(a["kind"], a["status"]) for a in report["actions"]
                if a["account"] == "trial_user36"}
    assert ("project.delete", "skipped") in statuses
    assert ("bucket.empty", "skipped") in statuses
    assert ("account.mark_released", "skipped") in statuses
    assert _record(inventory, "password", "trial_user36").get("released_at") is None
    site = _record(inventory, "modeler", "trial_user36")["site"]
    assert "trial_user36" in {p["owner"] for p in sandbox.platform.projects(site_key(site))}


def test_more_accounts_than_max_deletes(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                                        inventory: Path) -> None:
    set_up_trials(sandbox, capsys, inventory, ["trial_user36", "trial_user35"])

    status, report = run(capsys, "endsvc", inventory, RELEASE_DAY, "--max-deletes", "1")

    assert status == 1
    assert "2 deletions exceed --max-deletes 1" in report["notice"]
    assert {a["status"] for a in report["actions"] if a["kind"] == "project.delete"} == {
        "skipped"}


@pytest.mark.parametrize(("change", "grace_days", "expected"), [
    # ended on 2026-12-01, released on 2026-12-04
    ({}, 0, True),
    # ended three days ago, five grace days: not yet
    ({}, 5, False),
    # released after its end date: done
    ({"released_at": "2026-12-02T00:00:00+00:00"}, 0, False),
    # released in an earlier period, then granted again and expired again: released again
    ({"released_at": "2026-10-01T00:00:00+00:00"}, 0, True),
    # renewed with an end date in the future: active again
    ({"released_at": "2026-12-02T00:00:00+00:00", "end_date": "2027-01-31"}, 0, False),
])
def test_which_accounts_expire(change: dict[str, str], grace_days: int, expected: bool) -> None:
    raw = load_file(EXAMPLES)
    record = raw["password"]["trial_user36"]
    record.update(change)
    inventory = validate_records(raw)
    now = dt.datetime.fromisoformat(RELEASE_DAY)
    names = [a.name for a in endsvc.expired_accounts(inventory, now, grace_days=grace_days)]
    assert ("trial_user36" in names) is expected


def test_generated_passwords_follow_policy() -> None:
    policy = PasswordPolicy(20, "-_.+=,")
    samples = {generate_password(policy) for _ in range(200)}
    assert len(samples) == 200
    for password in samples:
        assert len(password) == 20
        assert any(c.isupper() for c in password)
        assert any(c.islower() for c in password)
        assert any(c.isdigit() for c in password)
        assert any(c in "-_.+=," for c in password)
        assert set(password) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_.+=,")


VAULT = "http://127.0.0.1:8200"
CLOUDZ = "http://127.0.0.1:9/cloudz"


@responses.activate
def test_rotation_keeps_concurrent_edit() -> None:
    """A check-and-set conflict re-reads the record and keeps the other writer's field."""
    from rpa.clients.vault import VaultClient

    url = f"{VAULT}/v1/trial/data/password/trial_user36"
    record = {"username": "trial_user36", "password": "Old-Password-1x", "owner": "before"}
    edited = {**record, "owner": "edited meanwhile"}
    # Reads: the rotation's own, the pending write's, the re-read after the conflict, the
    # promotion's.
    reads = [record, record, edited, {**edited, "pending_password": "New-Password-2y"}]
    versions = iter([3, 3, 4, 5])
    for data in reads:
        responses.get(url, json={"data": {"data": data, "metadata": {
            "version": next(versions), "deletion_time": "", "destroyed": False}}})
    responses.post(url, status=400, json={"errors": [
        "check-and-set parameter did not match the current version"]})
    responses.post(url, json={"data": {"version": 5}})
    responses.post(url, json={"data": {"version": 6}})
    responses.post(f"{CLOUDZ}/api/v1/sessions", status=201, json={"session": "s1"})
    responses.post(f"{CLOUDZ}/api/v1/users/trial_user36/password", status=204)

    vault = VaultClient(Settings(vault_addr=VAULT, vault_token="t0ken-x"))  # type: ignore[arg-type]
    cloudz = CloudzClient(JsonApi(CLOUDZ, service="cloudz", token=None, timeout_seconds=5,
                                  retries=0, backoff_seconds=0))
    rotate_password(vault, cloudz, "trial_user36", now=dt.datetime(2026, 12, 4, tzinfo=dt.UTC),
                    generate=lambda: "New-Password-2y")

    writes = [json.loads(call.request.body)["data"] for call in responses.calls
              if call.request.method == "POST" and call.request.url == url]
    assert len(writes) == 3
    assert writes[0] == {**record, "pending_password": "New-Password-2y"}  # lost the race
    assert writes[1] == {**edited, "pending_password": "New-Password-2y"}
    assert writes[2]["owner"] == "edited meanwhile"
    assert writes[2]["password"] == "New-Password-2y"
    assert "pending_password" not in writes[2]
