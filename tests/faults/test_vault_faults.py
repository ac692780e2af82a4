"""Vault faults: down, sealed or refusing at the start, a token that expires mid-run, records
that cannot be read, and a wrong mount."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from faultkit import (
    APPROLE_SECRET_ID,
    EXPIRED,
    K8S_JWT,
    VAULT_ADDR,
    FakeVault,
    JobRunner,
    add_project,
    aws_client,
    modeler_site,
    platform_writes,
    start_retired_clusters,
)

from rpa.sandbox.runtime import Servers, site_key

SEALED = {"errors": ["Vault is sealed"]}
DENIED = {"errors": ["permission denied"]}


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound once, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_nothing_changed(sandbox: Servers) -> None:
    assert platform_writes(sandbox) == {}
    assert aws_client(sandbox, "s3").list_buckets()["Buckets"] == []
    groups = aws_client(sandbox, "autoscaling").describe_auto_scaling_groups()
    assert [g["DesiredCapacity"] for g in groups["AutoScalingGroups"]] == [
        g["MinSize"] for g in groups["AutoScalingGroups"]]


def test_unreachable_vault_exits_1(sandbox: Servers, run_job: JobRunner,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("RPA_VAULT_ADDR", address)
    monkeypatch.setenv("RPA_VAULT_TOKEN", "hvs.unused")

    result = run_job("modeler")

    assert result.status == 1
    assert f"cannot reach Vault at {address}" in result.err
    assert "Traceback" not in result.err
    assert_nothing_changed(sandbox)


@pytest.mark.parametrize(("method", "path", "status", "body", "named"), [
    # sealed: the first listing fails with 503
    ("LIST", "trial/metadata/password", 503, SEALED, "trial/password/ failed: sealed"),
    # the policy does not cover the mount
    ("LIST", "trial/metadata/password", 403, DENIED,
     "trial/password/ failed: permission denied"),
    # Vault fails inside
    ("LIST", "trial/metadata/password", 500, {"errors": ["internal error"]},
     "trial/password/ failed: internal error"),
])
def test_vault_refusing_at_start_exits_1(sandbox: Servers, fake_vault: FakeVault,
                                         run_job: JobRunner, method: str, path: str,
                                         status: int, body: dict[str, list[str]],
                                         named: str) -> None:
    fake_vault.fail(method, path, status, body)

    result = run_job("modeler")

    assert result.status == 1
    assert named in result.err
    assert "Traceback" not in result.err
    assert_nothing_changed(sandbox)


def test_approle_login_refused_exits_1(sandbox: Servers, fake_vault: FakeVault,
                                       run_job: JobRunner,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use_approle(monkeypatch)
    fake_vault.fail("POST", "auth/approle/login", 403, DENIED)

    result = run_job("endsvc")

    assert result.status == 1
    assert f"Vault login with approle auth at {VAULT_ADDR} failed: permission denied" in \
        result.err
    assert_nothing_changed(sandbox)


@pytest.mark.parametrize("body", [
    # a mount that a token with list rights on every path finds empty
    {"errors": []},
    # a mount that does not exist, as Vault replies to a root token
    {"errors": ["no handler for route \"trail/metadata/password\". route entry not found."]},
])
def test_wrong_mount_exits_2(sandbox: Servers, fake_vault: FakeVault, run_job: JobRunner,
                             monkeypatch: pytest.MonkeyPatch, body: dict[str, list[str]]
                             ) -> None:
    monkeypatch.setenv("RPA_VAULT_KV_MOUNT", "trail")
    for folder in ("password", "modeler", "mcm"):
        fake_vault.fail("LIST", f"trail/metadata/{folder}", 404, body)

    result = run_job("modeler")

    assert result.status == 2
    assert "Vault mount 'trail'" in result.err
    assert "RPA_VAULT_KV_MOUNT" in result.err
    assert result.report == {}
    assert_nothing_changed(sandbox)


def use_approle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_VAULT_AUTH", "approle")
    monkeypatch.setenv("RPA_VAULT_ROLE_ID", "rpa-jobs")
    monkeypatch.setenv("RPA_VAULT_SECRET_ID", APPROLE_SECRET_ID)


def use_kubernetes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(K8S_JWT, encoding="utf-8")
    monkeypatch.setenv("RPA_VAULT_AUTH", "kubernetes")
    monkeypatch.setenv("RPA_VAULT_K8S_ROLE", "rpa-jobs")
    monkeypatch.setenv("RPA_VAULT_K8S_TOKEN_PATH", str(token_file))


@pytest.mark.parametrize(("auth", "login_path"), [
    # AppRole, as outside the cluster
    ("approle", "auth/approle/login"),
    # the service-account token, as the CronJobs log in
    ("kubernetes", "auth/kubernetes/login"),
])
def test_token_expiry_mid_read_relogs(sandbox: Servers, fake_vault: FakeVault,
                                      run_job: JobRunner, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path, auth: str, login_path: str) -> None:
    use_approle(monkeypatch) if auth == "approle" else use_kubernetes(monkeypatch, tmp_path)
    # The token ends after the listings and two of the reads.
    fake_vault.expire_after(5)

    result = run_job("modeler")

    assert result.status == 0, result.err
    assert fake_vault.logins == [login_path, login_path]
    assert result.statuses("trial_user01") == {"done"}
    assert "logging in again" in result.err


def test_token_expiry_mid_apply_relogs(sandbox: Servers, fake_vault: FakeVault,
                                       run_job: JobRunner,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use_approle(monkeypatch)
    # Every record is read (4 listings and reads), then the release writes the rotated
    # password back: the token ends just before that write.
    reads = len(fake_vault.records) + 3
    fake_vault.expire_after(reads + 1)

    result = run_job("endsvc", "--account", EXPIRED)

    assert result.status == 0, result.err
    assert len(fake_vault.logins) == 2
    record = fake_vault.records[("password", EXPIRED)]
    assert "released_at" in record
    assert "pending_password" not in record
    cloudz = sandbox.platform.accounts.cloudz_password(
        site_key("https://cloudz.sandbox.example"), EXPIRED)
    assert record["password"] == cloudz


@pytest.mark.parametrize(("job", "folder", "owner"), [
    # modeler: a project that trial_user01's record does not list would be deleted
    ("modeler", "modeler", "trial_user01"),
    # endsvc: the release of the expired account would delete its project
    ("endsvc", "password", EXPIRED),
])
def test_unreadable_record_withholds_deletions(sandbox: Servers, fake_vault: FakeVault,
                                               run_job: JobRunner, job: str, folder: str,
                                               owner: str) -> None:
    unread = "trial_user02"
    extra = add_project(sandbox, modeler_site(owner), owner, "by-hand")
    fake_vault.fail("GET", f"trial/data/{folder}/{unread}", 500,
                    {"errors": ["internal error"]}, times=5)

    result = run_job(job)

    assert result.status == 1
    assert (unread, folder) in result.error_fields()
    assert result.outcomes(unread) == []
    assert ("project.delete", "skipped") in [(kind, status) for _, kind, _, status
                                             in result.outcomes(owner)]
    assert_project_kept(sandbox, owner, extra["id"])


def test_soft_deleted_record_withholds_deletions(sandbox: Servers, fake_vault: FakeVault,
                                                 run_job: JobRunner) -> None:
    extra = add_project(sandbox, modeler_site("trial_user01"), "trial_user01", "by-hand")
    fake_vault.deleted.add(("password", "trial_user03"))

    result = run_job("modeler")

    assert result.status == 1
    assert result.error_fields() == [("trial_user03", "password")]
    message = result.report["errors"][0]["message"]
    assert "trial/password/trial_user03: latest version 1 is deleted" in message
    assert result.outcomes("trial_user03") == []
    # The other accounts in use are still reconciled, their deletions aside.
    assert result.statuses("trial_user02") == {"done"}
    assert_project_kept(sandbox, "trial_user01", extra["id"])


def assert_project_kept(sandbox: Servers, owner: str, project_id: str) -> None:
    assert platform_writes(sandbox)[("modeler", "DELETE", "/api/v1/projects/{project_id}")] == 0
    site = site_key(modeler_site(owner))
    assert project_id in {p["id"] for p in sandbox.platform.projects(site)}


def test_unreadable_record_keeps_clusters(sandbox: Servers, fake_vault: FakeVault,
                                          run_job: JobRunner) -> None:
    """mcm: a cluster that trial_user03's record no longer lists stays while a record of
    another account cannot be read."""
    start_retired_clusters(sandbox, "trial_user03", 1)
    fake_vault.fail("GET", "trial/data/mcm/trial_user02", 503, SEALED)

    result = run_job("mcm")

    assert result.status == 1
    assert ("trial_user02", "mcm") in result.error_fields()
    terminations = [(kind, status) for _, kind, _, status in result.outcomes("trial_user03")
                    if kind == "cluster.terminate"]
    assert terminations == [("cluster.terminate", "skipped")]
    active = aws_client(sandbox, "emr").list_clusters(
        ClusterStates=["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"])["Clusters"]
    assert "rpa-trial_user03/retired-0" in {c["Name"] for c in active}
