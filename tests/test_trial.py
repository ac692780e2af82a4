"""`rpa trial grant|extend|revoke|list|show` against the sandbox, and against Vault on
`responses` for the check-and-set cases."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import responses
import yaml

from rpa.cli import main
from rpa.clients.db import AuditEntry, Database
from rpa.inventory import load_file
from rpa.sandbox.runtime import SANDBOX_URLS, Servers, site_key

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
# Friday 2026-12-04 10:00 in Seoul, in core time; the examples are written as of this day.
NOW = "2026-12-04T10:00+09:00"
CLOUDZ = site_key(SANDBOX_URLS["cloudz_url"])
EDUCATION_SITE = site_key("https://modeler-b.trial.accuinsight.example")
GRANT = ["trial", "grant", "--owner", "김민준 (AI교육센터)", "--email", "kim@example.com",
         "--purpose", "education", "--until", "2027-01-31", "--now", NOW]


@pytest.fixture
def pool(sandbox: Servers) -> Path:
    """The sandbox's copy of the example records, which --sandbox commands read and write."""
    path = Path(sandbox.endpoints.folder) / "inventory.yaml"
    shutil.copyfile(EXAMPLES, path)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    raw = load_file(path)
    change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def log_release_action(servers: Servers, account: str, *, kind: str, status: str,
                       at: dt.datetime) -> None:
    """Add a row of the end-of-service job to the sandbox's audit table."""
    database = Database.connect(servers.endpoints.db_url)
    database.migrate()
    database.log_action(AuditEntry(run_id="run-test", job="endsvc", account=account, kind=kind,
                                   target=account, status=status, detail="", created_at=at))
    database.close()


def printed_password(out: str) -> str:
    match = re.search(r"비밀번호\s+(\S+)|password\s+(\S+)", out)
    assert match is not None, out
    return match.group(1) or match.group(2)


# Grant.

def test_grant_takes_first_free_account(pool: Path, sandbox: Servers,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *GRANT, "--sandbox")

    raw = load_file(pool)
    record = raw["password"]["trial_user39"]
    password = printed_password(out)
    assert status == 0
    assert "trial_user39 계정을 발급했습니다" in out
    assert (record["owner"], record["email"], record["purpose"]) == (
        "김민준 (AI교육센터)", "kim@example.com", "education")
    assert (record["start_date"], record["end_date"]) == ("2026-12-04", "2027-01-31")
    assert record["username"] == "trial_user39"
    # The new password is the stored one and the one CloudZ now accepts.
    assert password == record["password"] != "Example-Only-39x!Qv7"
    assert sandbox.platform.accounts.cloudz_password(CLOUDZ, "trial_user39") == password
    assert "pending_password" not in record
    assert password not in err
    # The education template, with the account's names filled in.
    modeler = raw["modeler"]["trial_user39"]
    assert [p["name"] for p in modeler["projects"]] == ["lab-trial-user39"]
    assert modeler["autoscaling_group"]["name"] == "eks-trial-user39-workers"
    assert modeler["autoscaling_group"]["core_desired"] == 3
    assert [c["name"] for c in raw["mcm"]["trial_user39"]["clusters"]] == ["spark"]
    # Nothing else changed.
    before = load_file(EXAMPLES)
    for folder in ("password", "modeler", "mcm"):
        others = {name for name in raw[folder] if name != "trial_user39"}
        assert {name: raw[folder][name] for name in others} == {
            name: before[folder][name] for name in others}


def test_grant_json_output(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *GRANT, "--sandbox", "--output", "json", "--template", "demo",
                         "--from", "2026-12-14")

    document = json.loads(out)
    raw = load_file(pool)
    assert status == 0
    assert document["account"] == "trial_user39"
    assert document["template"] == "demo"
    assert document["start_date"] == "2026-12-14"
    assert document["password"] == raw["password"]["trial_user39"]["password"]
    # The demo template has no mcm section, and trial_user39 had no mcm record.
    assert document["mcm_site"] is None
    assert "trial_user39" not in raw["mcm"]


def test_grant_none_free(pool: Path, sandbox: Servers,
                         capsys: pytest.CaptureFixture[str]) -> None:
    def take_all(raw: dict[str, Any]) -> None:
        for number in range(39, 46):
            raw["password"][f"trial_user{number}"].update(
                owner="누군가", start_date="2026-12-01", end_date="2026-12-31")

    edit(pool, take_all)
    before = pool.read_bytes()

    status, out, err = run(capsys, *GRANT, "--sandbox")

    assert status == 1
    assert "no free account in the pool" in err
    assert out == ""
    assert pool.read_bytes() == before
    assert sandbox.platform.accounts.cloudz_password(CLOUDZ, "trial_user39") is None


@pytest.mark.parametrize(("account", "reason"), [
    ("trial_user07", "still in use by 윤지아 (의료AI 연구실)"),  # active
    ("trial_user31", "still in use by"),  # scheduled: starts on 2026-12-14
    ("trial_user34", "has not released it yet"),  # expired, not released
    ("trial_user99", "no records for this account"),
])
def test_grant_named_account_rejected(pool: Path, sandbox: Servers,
                                      capsys: pytest.CaptureFixture[str], account: str,
                                      reason: str) -> None:
    before = pool.read_bytes()

    status, _, err = run(capsys, *GRANT, "--sandbox", "--account", account)

    assert status == 1
    assert reason in err
    assert pool.read_bytes() == before
    assert sandbox.platform.accounts.cloudz_password(CLOUDZ, account) is None


@pytest.mark.parametrize(("args", "message"), [
    (["--owner", " "], "--owner is empty"),
    (["--email", ""], "--email is empty"),
    (["--email", "not-an-address"], "invalid grant: email"),
    (["--from", "2027-02-01"], "before it starts"),
    (["--from", "2026-11-01", "--until", "2026-12-01"], "is in the past"),
    (["--template", "workshop"], "template 'workshop' not found"),
])
def test_grant_usage_errors(pool: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                            message: str) -> None:
    before = pool.read_bytes()

    # argparse keeps the last value of a repeated option, so these replace GRANT's.
    status, _, err = run(capsys, *GRANT, "--sandbox", *args)

    assert status == 2
    assert message in err
    assert pool.read_bytes() == before


def test_grant_skips_quarantined(pool: Path, sandbox: Servers,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    # trial_user39 was released once, then a later release failed: it stays out of the pool.
    at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    log_release_action(sandbox, "trial_user39", kind="account.mark_released", status="done",
                       at=at)
    log_release_action(sandbox, "trial_user39", kind="bucket.empty", status="failed",
                       at=at + dt.timedelta(days=3))
    # trial_user40's failure came before its last release, so it is free again.
    log_release_action(sandbox, "trial_user40", kind="bucket.empty", status="failed", at=at)
    log_release_action(sandbox, "trial_user40", kind="account.mark_released", status="done",
                       at=at + dt.timedelta(hours=1))

    status_named, _, err = run(capsys, *GRANT, "--sandbox", "--account", "trial_user39")
    status, out, _ = run(capsys, *GRANT, "--sandbox")

    assert status_named == 1
    assert "quarantined" in err
    assert status == 0
    assert "trial_user40 계정을 발급했습니다" in out
    assert "owner" not in load_file(pool)["password"]["trial_user39"]


def test_grant_apply_now_prepares_account(pool: Path, sandbox: Servers,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *GRANT, "--sandbox", "--apply-now")

    assert status == 0
    assert "[modeler]" in out
    assert "[mcm]" in out
    projects = [(p["name"], p["owner"]) for p in sandbox.platform.projects(EDUCATION_SITE)]
    assert projects == [("lab-trial-user39", "trial_user39")]
    session = boto3.Session(region_name="ap-northeast-2")
    autoscaling = session.client("autoscaling", endpoint_url=sandbox.endpoints.aws_url)
    group = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["eks-trial-user39-workers"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 3
    emr = session.client("emr", endpoint_url=sandbox.endpoints.aws_url)
    clusters = emr.list_clusters(ClusterStates=["STARTING", "BOOTSTRAPPING", "RUNNING",
                                                "WAITING"])["Clusters"]
    assert [c["Name"] for c in clusters] == ["rpa-trial_user39/spark"]

    status_list, listing, _ = run(capsys, "trial", "list", "--sandbox", "--now", NOW,
                                  "--output", "json")

    states = {row["account"]: row["state"] for row in json.loads(listing)["accounts"]}
    assert status_list == 0
    assert states["trial_user39"] == "active"


def test_grant_apply_now_json_one_document(pool: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *GRANT, "--sandbox", "--apply-now", "--output", "json")

    document = json.loads(out)
    assert status == 0
    assert [(job["job"], job["exit_status"]) for job in document["apply_now"]] == [
        ("modeler", 0), ("mcm", 0)]
    kinds = {a["kind"] for a in document["apply_now"][0]["report"]["actions"]}
    assert "project.create" in kinds


def test_writing_needs_running_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_SANDBOX_DIR", str(tmp_path / "none"))

    status, _, err = run(capsys, *GRANT, "--sandbox")

    assert status == 2
    assert "rpa sandbox up" in err


# Extend and revoke.

def test_extend_moves_end_date(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = load_file(pool)["password"]["trial_user07"]

    status, out, _ = run(capsys, "trial", "extend", "trial_user07", "--until", "2027-03-31",
                         "--sandbox", "--now", NOW)

    after = load_file(pool)["password"]["trial_user07"]
    assert status == 0
    assert "2026-12-31 → 2027-03-31" in out
    assert after == {**before, "end_date": "2027-03-31"}


@pytest.mark.parametrize(("account", "until", "status", "message"), [
    ("trial_user40", "2027-03-31", 1, "is not granted"),  # free
    ("trial_user07", "2026-12-01", 2, "use rpa trial revoke"),  # in the past
])
def test_extend_rejected(pool: Path, capsys: pytest.CaptureFixture[str], account: str,
                         until: str, status: int, message: str) -> None:
    before = pool.read_bytes()

    result, _, err = run(capsys, "trial", "extend", account, "--until", until, "--sandbox",
                         "--now", NOW)

    assert result == status
    assert message in err
    assert pool.read_bytes() == before


def test_revoke_ends_yesterday(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def rotated(raw: dict[str, Any]) -> None:
        raw["password"]["trial_user07"]["rotated_at"] = "2026-12-04T01:00:00+00:00"

    edit(pool, rotated)
    before = load_file(pool)["password"]

    status, out, _ = run(capsys, "trial", "revoke", "trial_user07", "--sandbox", "--at", NOW)
    status_future, _, _ = run(capsys, "trial", "revoke", "trial_user31", "--sandbox", "--at",
                              NOW)

    after = load_file(pool)["password"]
    assert status == 0
    assert status_future == 0
    assert "2026-12-31 → 2026-12-03" in out
    # rotated_at goes, so the release rotates the password the user knows.
    expected = {k: v for k, v in before["trial_user07"].items() if k != "rotated_at"}
    assert after["trial_user07"] == {**expected, "end_date": "2026-12-03"}
    # A period that had not started ends yesterday too, as a one-day period.
    assert (after["trial_user31"]["start_date"], after["trial_user31"]["end_date"]) == (
        "2026-12-03", "2026-12-03")


def test_revoke_free_account_fails(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "trial", "revoke", "trial_user40", "--sandbox", "--at", NOW)

    assert status == 1
    assert "is not granted" in err


def test_revoke_now_releases_account(pool: Path, sandbox: Servers,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, *GRANT, "--sandbox", "--apply-now")
    granted = printed_password(out)

    status, out, _ = run(capsys, "trial", "revoke", "trial_user39", "--now", "--sandbox",
                         "--at", NOW)

    record = load_file(pool)["password"]["trial_user39"]
    assert status == 0
    assert "[endsvc]" in out
    assert record["released_at"].startswith("2026-12-04T01:00")
    # The granted password no longer works: the release rotated it.
    current = sandbox.platform.accounts.cloudz_password(CLOUDZ, "trial_user39")
    assert current == record["password"] != granted
    assert sandbox.platform.projects(EDUCATION_SITE) == []

    status_list, listing, _ = run(capsys, "trial", "list", "--sandbox", "--now", NOW,
                                  "--output", "json")
    states = {row["account"]: row["state"] for row in json.loads(listing)["accounts"]}
    assert status_list == 0
    assert states["trial_user39"] == "released"


# List and show.

def test_list_states(pool: Path, sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    def release(raw: dict[str, Any]) -> None:
        raw["password"]["trial_user36"]["released_at"] = "2026-12-02T00:00:00+00:00"

    edit(pool, release)
    log_release_action(sandbox, "trial_user37", kind="project.delete", status="failed",
                       at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))

    status, out, _ = run(capsys, "trial", "list", "--sandbox", "--now", NOW, "--output", "json")

    document = json.loads(out)
    states = {row["account"]: row["state"] for row in document["accounts"]}
    assert status == 0
    assert document["counts"] == {"free": 7, "scheduled": 3, "active": 27, "ending": 3,
                                  "expired": 3, "quarantined": 1, "released": 1, "invalid": 0}
    assert [name for name, state in states.items() if state == "ending"] == [
        "trial_user05", "trial_user12", "trial_user21"]
    assert states["trial_user36"] == "released"
    assert states["trial_user37"] == "quarantined"
    assert states["trial_user34"] == "expired"
    rows = {row["account"]: row for row in document["accounts"]}
    assert rows["trial_user05"]["days_left"] == 3
    assert rows["trial_user21"]["days_left"] == 0
    assert rows["trial_user40"]["days_left"] is None


def test_list_text_korean_and_english(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, korean, _ = run(capsys, "trial", "list", "--sandbox", "--now", NOW)
    _, english, _ = run(capsys, "trial", "list", "--sandbox", "--now", NOW, "--lang", "en",
                        "--state", "ending")

    assert "계정 풀 (2026-12-04 기준)" in korean
    line = next(line for line in korean.splitlines() if line.startswith("trial_user05"))
    assert "7일 이내 종료" in line
    assert "2026-10-27 ~ 2026-12-07" in line
    assert line.endswith("D-3")
    assert "D+13" in next(line for line in korean.splitlines()
                          if line.startswith("trial_user34"))
    rows = [line.split()[0] for line in english.splitlines() if line.startswith("trial_")]
    assert rows == ["trial_user05", "trial_user12", "trial_user21"]
    assert "ending within 7 days" in english


def test_list_from_inventory_without_database(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "trial", "list", "--inventory", str(EXAMPLES), "--now", NOW,
                         "--output", "json")

    document = json.loads(out)
    assert status == 0
    assert document["counts"]["expired"] == 5
    assert "RPA_DB_URL" in document["audit_table"]


def test_show_masks_passwords(pool: Path, sandbox: Servers,
                              capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "modeler", "--sandbox", "--now", NOW, "--account", "trial_user03")

    status, out, err = run(capsys, "trial", "show", "trial_user03", "--sandbox", "--now", NOW)
    status_json, document, _ = run(capsys, "trial", "show", "trial_user03", "--sandbox",
                                   "--now", NOW, "--output", "json")

    live = json.loads(document)["live"]
    assert status == 0
    assert status_json == 0
    assert "Example-Only-03x!Qv7" not in out + err + document
    assert "password: '***'" in out
    assert "trial_user03 · 사용 중 · D-14" in out
    assert "워커 노드 그룹 eks-trial-user03-workers: 희망 2 / 실행 2" in out
    wanted = [p["name"] for p in load_file(EXAMPLES)["modeler"]["trial_user03"]["projects"]]
    assert [p["name"] for p in live["projects"]] == wanted
    assert live["autoscaling_group"]["desired"] == 2
    assert live["clusters"] == []


# Check-and-set against Vault.

VAULT = "http://127.0.0.1:8200"


class FakeVault:
    """A KV v2 mount on `responses` that keeps versions and enforces check-and-set."""

    def __init__(self, mock: responses.RequestsMock, records: dict[str, dict[str, Any]]) -> None:
        self.records = {path: (dict(data), 1) for path, data in records.items()}
        self.before_write: Callable[[str], None] | None = None
        self.writes: list[tuple[str, dict[str, Any]]] = []
        base = re.escape(f"{VAULT}/v1/trial/")
        mock.add_callback("LIST", re.compile(base + r"metadata/(\w+)/?$"), self._list)
        mock.add_callback("GET", re.compile(base + r"data/(\w+/\w+)$"), self._read)
        mock.add_callback("POST", re.compile(base + r"data/(\w+/\w+)$"), self._write)

    def put(self, path: str, data: dict[str, Any]) -> None:
        """Write as another client would, bumping the version."""
        _, version = self.records.get(path, ({}, 0))
        self.records[path] = (dict(data), version + 1)

    def data(self, path: str) -> dict[str, Any]:
        return self.records[path][0]

    def _path(self, request: Any) -> str:
        return str(request.url).split("/v1/trial/", 1)[1].split("/", 1)[1]

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        folder = self._path(request).rstrip("/")
        names = sorted(path.split("/")[1] for path in self.records
                       if path.startswith(folder + "/"))
        if not names:
            return 404, {}, json.dumps({"errors": []})
        return 200, {}, json.dumps({"data": {"keys": names}})

    def _read(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = self._path(request)
        if path not in self.records:
            return 404, {}, json.dumps({"errors": []})
        data, version = self.records[path]
        return 200, {}, json.dumps({"data": {"data": data, "metadata": {
            "version": version, "deletion_time": "", "destroyed": False}}})

    def _write(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = self._path(request)
        if self.before_write is not None:
            self.before_write(path)
        body = json.loads(request.body)
        _, version = self.records.get(path, ({}, 0))
        if body["options"]["cas"] != version:
            return 400, {}, json.dumps({"errors": [
                "check-and-set parameter did not match the current version"]})
        self.records[path] = (body["data"], version + 1)
        self.writes.append((path, body["data"]))
        return 200, {}, json.dumps({"data": {"version": version + 1}})


@pytest.fixture
def vault(sandbox: Servers, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    """Vault with three accounts of the examples; the sandbox serves CloudZ and the database."""
    monkeypatch.setenv("RPA_VAULT_ADDR", VAULT)
    monkeypatch.setenv("RPA_VAULT_TOKEN", "hvs.test")
    examples = load_file(EXAMPLES)
    records = {f"{folder}/{name}": examples[folder][name]
               for folder in ("password", "modeler", "mcm")
               for name in ("trial_user07", "trial_user39", "trial_user40")
               if name in examples[folder]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(sandbox.endpoints.platform_url)
        yield FakeVault(mock, records)


def test_grant_on_vault_writes_with_cas(vault: FakeVault, sandbox: Servers,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *GRANT, "--sandbox")

    record = vault.data("password/trial_user39")
    assert status == 0
    assert printed_password(out) == record["password"]
    assert sandbox.platform.accounts.cloudz_password(CLOUDZ, "trial_user39") == record[
        "password"]
    # Claim, two new records (check-and-set 0), pending password, promotion.
    assert [path for path, _ in vault.writes] == [
        "password/trial_user39", "modeler/trial_user39", "mcm/trial_user39",
        "password/trial_user39", "password/trial_user39"]


def test_grant_keeps_concurrent_edit(vault: FakeVault, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    def edit_note(path: str) -> None:
        vault.before_write = None
        vault.put(path, {**vault.data(path), "note": "laptop 12 lent"})

    vault.before_write = edit_note

    status, _, _ = run(capsys, *GRANT, "--sandbox")

    record = vault.data("password/trial_user39")
    assert status == 0
    assert record["note"] == "laptop 12 lent"
    assert record["owner"] == "김민준 (AI교육센터)"


def test_grant_conflict_reported(vault: FakeVault, sandbox: Servers,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def grant_elsewhere(path: str) -> None:
        vault.before_write = None
        vault.put(path, {**vault.data(path), "owner": "다른 운영자의 사용자",
                         "start_date": "2026-12-04", "end_date": "2026-12-20"})

    vault.before_write = grant_elsewhere

    status, out, err = run(capsys, *GRANT, "--sandbox", "--account", "trial_user39")

    record = vault.data("password/trial_user39")
    assert status == 1
    assert "conflict: trial_user39: it was granted meanwhile to 다른 운영자의 사용자" in err
    assert out == ""
    assert record["owner"] == "다른 운영자의 사용자"
    assert record["end_date"] == "2026-12-20"
    assert record["password"] == "Example-Only-39x!Qv7"
    assert vault.writes == []
    assert "modeler/trial_user39" not in vault.records
    assert sandbox.platform.accounts.cloudz_password(CLOUDZ, "trial_user39") is None


def test_grant_failure_is_undone(vault: FakeVault, sandbox: Servers,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.platform.accounts.set_cloudz_password(CLOUDZ, "trial_user39", "set-by-hand-1!")
    before = dict(vault.data("password/trial_user39"))

    status, out, err = run(capsys, *GRANT, "--sandbox")

    assert status == 1
    assert "the grant failed and was undone" in err
    assert out == ""
    # The pending password stays for the next rotation to finish or discard.
    record = vault.data("password/trial_user39")
    assert {k: v for k, v in record.items() if k != "pending_password"} == before
