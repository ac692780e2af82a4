"""The modeler job: its pure plan, and whole runs through the CLI against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from rpa.cli import main
from rpa.clients.aws import GroupState, ScheduledAction
from rpa.clients.modeler import RemoteItem, RemoteProject
from rpa.inventory import Account, load_file, validate_records
from rpa.modeler import Observed, SiteState, plan_changes, schedule_row_for
from rpa.plan import Kind
from rpa.sandbox.runtime import TOKEN, Servers, site_key

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
# Friday 2026-12-04 10:00 in Seoul: core time for MON-FRI 09:00-18:00.
CORE = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
# The same Friday at 19:00: outside core time.
OFF = CORE.replace(hour=19)
SITE = "https://modeler.example"


def _account(**modeler: Any) -> Account:
    record = {
        "site": SITE,
        "schedule": {"days": "MON-FRI", "start": "09:00", "end": "18:00", "holidays": "KR"},
        "projects": [{"name": "churn", "cpu": 4, "memory_gib": 16, "gpu": 0,
                      "storage_gib": 50}],
        "autoscaling_group": {"name": "workers-a", "core_desired": 2, "off_desired": 0,
                              "min": 0, "max": 4},
    }
    record.update(modeler)
    raw = {
        "password": {"user_a": {"username": "user_a", "password": "pw-Example-1!",
                                "start_date": "2026-12-01", "end_date": "2026-12-31"}},
        "modeler": {"user_a": record},
        "mcm": {},
    }
    inventory = validate_records(raw)
    assert inventory.errors == []
    return inventory.accounts["user_a"]


def _observed(account: Account, now: dt.datetime, *, projects: list[RemoteProject] | None = None,
              running: dict[str, list[RemoteItem]] | None = None,
              group: GroupState | None = None, in_step: bool = True) -> Observed:
    """Observed state; `in_step` makes the group's scheduled actions and row match the record."""
    assert account.modeler is not None and account.modeler.autoscaling_group is not None
    spec = account.modeler.autoscaling_group
    observed = Observed(sites={SITE: SiteState(projects or [], running or {})})  # type: ignore[arg-type]
    observed.groups = {spec.name: group or GroupState(spec.name, 0, 4, 2, 2)}
    if in_step:
        from rpa.modeler import scheduled_actions_for

        observed.scheduled = {spec.name: scheduled_actions_for(
            account.name, spec, account.modeler.schedule, now, 2)}
        observed.schedule_rows = {account.name: schedule_row_for(
            "modeler", account.name, account.modeler.schedule, now)}
    return observed


CHURN = RemoteProject("prj-1", "churn", "user_a",
                      {"cpu": 4, "memory_gib": 16, "gpu": 0, "storage_gib": 50})


def _kinds(result: Any) -> list[tuple[str, str]]:
    return [(action.kind.value, action.target) for action in result.actions]


def test_plan_in_step_is_empty() -> None:
    account = _account()
    result = plan_changes([account], _observed(account, CORE, projects=[CHURN]), now=CORE)
    assert result.actions == []
    assert result.problems == []


@pytest.mark.parametrize(("projects", "expected"), [
    # a missing project is created
    ([], [("project.create", "churn")]),
    # different resources are updated
    ([RemoteProject("prj-1", "churn", "user_a",
                    {"cpu": 2, "memory_gib": 16, "gpu": 0, "storage_gib": 50})],
     [("project.update", "churn")]),
    # a project of the account that the record does not list is deleted
    ([CHURN, RemoteProject("prj-2", "extra", "user_a", CHURN.resources)],
     [("project.delete", "extra")]),
    # another owner's project is never touched
    ([CHURN, RemoteProject("prj-3", "theirs", "user_b", CHURN.resources)], []),
])
def test_plan_projects(projects: list[RemoteProject], expected: list[tuple[str, str]]) -> None:
    account = _account()
    result = plan_changes([account], _observed(account, CORE, projects=projects), now=CORE)
    assert _kinds(result) == expected
    assert result.problems == []


def test_plan_name_taken_by_other_owner() -> None:
    account = _account()
    taken = RemoteProject("prj-9", "churn", "user_b", CHURN.resources)

    result = plan_changes([account], _observed(account, CORE, projects=[taken]), now=CORE)

    assert result.actions == []
    assert [(p.account, p.field) for p in result.problems] == [
        ("user_a", "modeler.projects[0].name")]
    assert "user_b" in result.problems[0].message


@pytest.mark.parametrize(("now", "group", "expected_detail"), [
    # core time, group at off size: scale out to core_desired
    (CORE, GroupState("workers-a", 0, 4, 0, 0), "desired 0 -> 2"),
    # outside core time, group at core size: scale in to off_desired
    (OFF, GroupState("workers-a", 0, 4, 2, 2), "desired 2 -> 0"),
    # min and max differ from the record: all three are set in one call
    (CORE, GroupState("workers-a", 1, 8, 2, 2), "desired 2 -> 2, min/max 1/8 -> 0/4"),
])
def test_plan_group_size(now: dt.datetime, group: GroupState, expected_detail: str) -> None:
    account = _account()
    observed = _observed(account, now, projects=[CHURN], group=group)

    result = plan_changes([account], observed, now=now)

    sizes = [a for a in result.actions if a.kind is Kind.ASG_SET_DESIRED]
    assert [a.detail for a in sizes] == [expected_detail]
    assert sizes[0].params["min"] == 0
    assert sizes[0].params["max"] == 4


def test_plan_stops_running_items_off_core() -> None:
    account = _account()
    running = {
        "workspaces": [RemoteItem("ws-1", "prj-1", "notebook", "RUNNING"),
                       RemoteItem("ws-2", "prj-other", "theirs", "RUNNING")],
        "deployments": [RemoteItem("dep-1", "prj-1", "api", "RUNNING")],
    }
    observed = _observed(account, OFF, projects=[CHURN], running=running,
                         group=GroupState("workers-a", 0, 4, 0, 0))

    result = plan_changes([account], observed, now=OFF)

    assert _kinds(result) == [("workspace.stop", "churn/notebook"),
                              ("deployment.stop", "churn/api")]


def test_plan_keeps_running_items_in_core() -> None:
    account = _account()
    running = {"workspaces": [RemoteItem("ws-1", "prj-1", "notebook", "RUNNING")]}
    result = plan_changes([account], _observed(account, CORE, projects=[CHURN], running=running),
                          now=CORE)
    assert result.actions == []


def test_plan_missing_group_is_problem() -> None:
    account = _account()
    observed = _observed(account, CORE, projects=[CHURN])
    observed.groups = {}

    result = plan_changes([account], observed, now=CORE)

    assert [p.field for p in result.problems] == ["modeler.autoscaling_group.name"]
    assert "workers-a" in result.problems[0].message


def test_plan_scheduled_actions_next_two() -> None:
    account = _account()
    observed = _observed(account, CORE, projects=[CHURN], in_step=False)
    observed.schedule_rows = {}
    stale = ScheduledAction("workers-a", "rpa-user_a-on-20261201T0000Z",
                            dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 2)
    foreign = ScheduledAction("workers-a", "rpa-user_a-off-20261204T0900Z",
                              dt.datetime(2026, 12, 4, 9, tzinfo=dt.UTC), 3)
    observed.scheduled = {"workers-a": [stale, foreign]}

    result = plan_changes([account], observed, now=CORE)

    # Friday 10:00 KST: next switches are Friday 18:00 KST off and Monday 09:00 KST on.
    assert _kinds(result) == [
        ("asg.schedule", "workers-a/rpa-user_a-off-20261204T0900Z"),  # desired 3 -> 0
        ("asg.schedule", "workers-a/rpa-user_a-on-20261207T0000Z"),
        ("asg.unschedule", "workers-a/rpa-user_a-on-20261201T0000Z"),
        ("schedule_row.upsert", "user_a"),
    ]
    assert result.actions[0].params["action"].desired == 0
    assert result.actions[1].params["action"].desired == 2


def test_plan_skips_holiday_in_switches() -> None:
    account = _account()
    observed = _observed(account, CORE, projects=[CHURN], in_step=False)
    # Thursday 2026-12-24 18:00 KST; Friday 2026-12-25 is Christmas, a public holiday in Korea.
    now = dt.datetime(2026, 12, 24, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))

    result = plan_changes([account], observed, now=now)

    names = [a.target for a in result.actions if a.kind is Kind.ASG_SCHEDULE]
    assert names == ["workers-a/rpa-user_a-off-20261224T0900Z",
                     "workers-a/rpa-user_a-on-20261228T0000Z"]


def test_plan_site_error_is_problem() -> None:
    account = _account()
    observed = _observed(account, CORE)
    observed.sites = {}
    observed.site_errors = {SITE: "modeler GET /api/v1/projects failed with HTTP 500"}

    result = plan_changes([account], observed, now=CORE)

    assert [p.field for p in result.problems] == ["modeler.site"]
    assert all(a.kind not in {Kind.PROJECT_CREATE, Kind.PROJECT_DELETE} for a in result.actions)


# Whole runs through the CLI against the sandbox.

def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["modeler", "--sandbox", *args])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status, out, _ = run_cli(capsys, "--output", "json", *args)
    return status, json.loads(out)


def _sqlite(servers: Servers) -> sa.Engine:
    return sa.create_engine(servers.endpoints.db_url)


def test_dry_run_changes_nothing(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "--dry-run", "--now", CORE.isoformat())

    assert status == 0
    assert report["dry_run"] is True
    assert report["actions"]
    assert {a["status"] for a in report["actions"]} == {"planned"}
    # The SSO token request is a POST that changes nothing; every other call only reads.
    methods = {method for (api, method, _) in sandbox.platform.calls if api != "sso"}
    assert methods == {"GET"}
    assert sandbox.platform.projects(site_key("https://modeler-a.trial.accuinsight.example")) == []
    # Not even the migrations ran: a dry-run needs no write access to the database.
    with _sqlite(sandbox).connect() as conn:
        assert sa.inspect(conn).get_table_names() == []


def test_apply_then_second_run_empty(sandbox: Servers,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    status, first = run_json(capsys, "--now", CORE.isoformat())
    status_again, second = run_json(capsys, "--now", CORE.isoformat())

    assert status == 0
    assert first["summary"]["done"] == len(first["actions"]) > 0
    assert first["summary"]["failed"] == 0
    assert status_again == 0
    assert second["actions"] == []
    in_use = [a["account"] for a in first["accounts"] if a["state"] == "in_use"]
    assert len(in_use) == 30
    # Every in-use account got its projects and its schedule row.
    kinds = {(a["account"], a["kind"]) for a in first["actions"]}
    assert all((name, "project.create") in kinds for name in in_use)
    assert all((name, "schedule_row.upsert") in kinds for name in in_use)
    # Expired, future and free accounts were left alone.
    assert {a["account"] for a in first["actions"]} == set(in_use)
    with _sqlite(sandbox).connect() as conn:
        logged = conn.execute(sa.text("SELECT COUNT(*) FROM rpa_action_log")).scalar()
        runs = conn.execute(sa.text("SELECT status FROM rpa_run")).scalars().all()
    assert logged == len(first["actions"])
    # A run that changes nothing is recorded too, so the table shows every run.
    assert runs == ["succeeded", "succeeded"]


@pytest.fixture
def bad_inventory(tmp_path: Path) -> Path:
    raw = load_file(EXAMPLES)
    raw["password"]["trial_user02"]["end_date"] = "2027-02-30"
    raw["modeler"]["trial_user03"]["schedule"]["start"] = "25:00"
    raw["modeler"]["trial_user04"]["schedule"]["days"] = "MON-FRII"
    raw["modeler"]["trial_user06"]["projects"][0]["cpu"] = -2
    raw["mcm"]["trial_user08"]["clusters"][0]["market"] = "RESERVED"
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_five_invalid_accounts_others_run(sandbox: Servers, bad_inventory: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "--inventory", str(bad_inventory), "--now",
                              CORE.isoformat())

    assert status == 1
    assert sorted((e["account"], e["field"]) for e in report["errors"]) == [
        ("trial_user02", "password.end_date"),
        ("trial_user03", "modeler.schedule.start"),
        ("trial_user04", "modeler.schedule.days"),
        ("trial_user06", "modeler.projects[0].cpu"),
        ("trial_user08", "mcm.clusters[0].market"),
    ]
    invalid = {"trial_user02", "trial_user03", "trial_user04", "trial_user06", "trial_user08"}
    done = {a["account"] for a in report["actions"] if a["status"] == "done"}
    assert done.isdisjoint(invalid)
    assert len(done) == 25  # the 30 in use less the five invalid
    assert report["summary"]["failed"] == 0


def test_text_output_korean_default(sandbox: Servers, bad_inventory: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _, korean, _ = run_cli(capsys, "--dry-run", "--inventory", str(bad_inventory),
                           "--now", CORE.isoformat())
    _, english, _ = run_cli(capsys, "--dry-run", "--inventory", str(bad_inventory),
                            "--now", CORE.isoformat(), "--lang", "en")

    assert "실행 계획" in korean
    assert "프로젝트 생성" in korean
    assert "trial_user03  modeler.schedule.start" in korean
    assert "plan (dry-run" in english
    assert "create project" in english
    assert "trial_user04  modeler.schedule.days" in english


def test_no_password_in_any_output(sandbox: Servers, bad_inventory: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    raw = load_file(bad_inventory)
    passwords = [record["password"] for record in raw["password"].values()]
    outputs = []
    for args in (["--dry-run"], ["--dry-run", "--output", "json"], [], ["--lang", "en"]):
        _, out, err = run_cli(capsys, "--inventory", str(bad_inventory),
                              "--now", CORE.isoformat(), *args)
        outputs += [out, err]
    with _sqlite(sandbox).connect() as conn:
        outputs += [str(row) for row in conn.execute(sa.text("SELECT * FROM rpa_action_log"))]
    text = "\n".join(outputs)
    assert len(passwords) == 45
    assert all(password not in text for password in passwords)


def _site_api(sandbox: Servers, site: str) -> str:
    return sandbox.endpoints.site_url(site) + "/api/v1"


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=5)
    reply.raise_for_status()
    result: dict[str, Any] = reply.json()
    return result


def _example_site(account: str) -> str:
    site: str = load_file(EXAMPLES)["modeler"][account]["site"]
    return site


def test_off_core_stops_workspaces(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")
    site = _example_site("trial_user03")
    project = sandbox.platform.projects(site_key(site))[0]
    workspace = _post(f"{_site_api(sandbox, site)}/workspaces",
                      {"project_id": project["id"], "name": "notebook"})

    status, report = run_json(capsys, "--now", OFF.isoformat(), "--account", "trial_user03")

    assert status == 0
    kinds = [(a["kind"], a["status"]) for a in report["actions"]]
    assert ("workspace.stop", "done") in kinds
    assert ("asg.set_desired", "done") in kinds
    assert [w["status"] for w in sandbox.platform.workspaces(site_key(site))
            if w["id"] == workspace["id"]] == ["STOPPED"]


def test_extra_project_deleted(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    site = _example_site("trial_user03")
    _post(f"{_site_api(sandbox, site)}/projects", {
        "name": "made-by-hand", "owner": "trial_user03",
        "resources": {"cpu": 1, "memory_gib": 1, "gpu": 0, "storage_gib": 1}})

    status, report = run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")

    assert status == 0
    assert ("project.delete", "made-by-hand", "done") in [
        (a["kind"], a["target"], a["status"]) for a in report["actions"]]
    names = [p["name"] for p in sandbox.platform.projects(site_key(site))]
    assert "made-by-hand" not in names


def test_deletes_withheld_when_records_invalid(sandbox: Servers, bad_inventory: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    site = _example_site("trial_user05")
    _post(f"{_site_api(sandbox, site)}/projects", {
        "name": "made-by-hand", "owner": "trial_user05",
        "resources": {"cpu": 1, "memory_gib": 1, "gpu": 0, "storage_gib": 1}})

    status, report = run_json(capsys, "--inventory", str(bad_inventory),
                              "--now", CORE.isoformat())

    assert status == 1
    deletes = [a for a in report["actions"] if a["kind"] == "project.delete"]
    assert [(a["target"], a["status"]) for a in deletes] == [("made-by-hand", "skipped")]
    assert "records incomplete" in deletes[0]["error"]
    assert "made-by-hand" in [p["name"] for p in sandbox.platform.projects(site_key(site))]


def test_mass_delete_needs_override(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    site = _example_site("trial_user03")
    for index in range(3):
        _post(f"{_site_api(sandbox, site)}/projects", {
            "name": f"by-hand-{index}", "owner": "trial_user03",
            "resources": {"cpu": 1, "memory_gib": 1, "gpu": 0, "storage_gib": 1}})

    status, report = run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03",
                              "--max-deletes", "2")
    remaining = [p["name"] for p in sandbox.platform.projects(site_key(site))]
    status_override, override = run_json(capsys, "--now", CORE.isoformat(), "--account",
                                         "trial_user03", "--max-deletes", "2",
                                         "--allow-mass-delete")

    assert status == 1
    assert "exceed --max-deletes 2" in report["notice"]
    assert {n for n in remaining if n.startswith("by-hand")} == {"by-hand-0", "by-hand-1",
                                                               "by-hand-2"}
    assert status_override == 0
    assert [a["status"] for a in override["actions"] if a["kind"] == "project.delete"] == [
        "done"] * 3


def test_name_conflict_left_alone(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    raw = load_file(EXAMPLES)
    site = raw["modeler"]["trial_user03"]["site"]
    wanted = raw["modeler"]["trial_user03"]["projects"][0]["name"]
    _post(f"{_site_api(sandbox, site)}/projects", {
        "name": wanted, "owner": "someone_else",
        "resources": {"cpu": 1, "memory_gib": 1, "gpu": 0, "storage_gib": 1}})

    status, report = run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")

    assert status == 1
    assert [(e["account"], e["field"]) for e in report["errors"]] == [
        ("trial_user03", "modeler.projects[0].name")]
    owners = [p["owner"] for p in sandbox.platform.projects(site_key(site))
              if p["name"] == wanted]
    assert owners == ["someone_else"]


def test_site_failure_fails_its_accounts_only(sandbox: Servers,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    failing = "https://modeler-a.trial.accuinsight.example"
    sandbox.platform.fail_next(method="GET", path_contains=site_key(failing) + "/api/v1/projects",
                               status=500, times=20)

    status, report = run_json(capsys, "--now", CORE.isoformat())

    assert status == 1
    raw = load_file(EXAMPLES)
    on_failing = {name for name, record in raw["modeler"].items() if record["site"] == failing}
    problem_accounts = {e["account"] for e in report["errors"] if e["field"] == "modeler.site"}
    created = {a["account"] for a in report["actions"]
               if a["kind"] == "project.create" and a["status"] == "done"}
    assert problem_accounts and problem_accounts <= on_failing
    assert created and created.isdisjoint(on_failing)


def test_mariadb_rows_and_audit(sandbox: Servers, mysql_url: str,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_DB_URL", mysql_url)

    status, report = run_json(capsys, "--now", CORE.isoformat())
    status_again, again = run_json(capsys, "--now", CORE.isoformat())

    engine = sa.create_engine(mysql_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT account, next_off_at FROM rpa_schedule WHERE job = 'modeler'")).all()
        logged = conn.execute(sa.text("SELECT COUNT(*) FROM rpa_action_log WHERE run_id = :r"),
                              {"r": report["run_id"]}).scalar()
    engine.dispose()
    assert status == 0
    assert status_again == 0
    assert again["actions"] == []
    assert len(rows) == 30
    assert logged == len(report["actions"])
    # Friday 18:00 KST is stored as 09:00 UTC for the MON-FRI 09:00-18:00 accounts.
    offs = {account: at for account, at in rows}
    assert offs["trial_user03"] == dt.datetime(2026, 12, 4, 9, 0)


def test_inventory_validate_command(bad_inventory: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["inventory", "validate", "--inventory", str(bad_inventory)])
    out = capsys.readouterr().out

    assert status == 1
    assert "유효한 계정 40개, 오류 5건" in out
    assert "trial_user02  password.end_date = 2027-02-30" in out


def test_now_without_offset_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["modeler", "--dry-run", "--now", "2026-12-04T10:00"])
    assert exit_info.value.code == 2
    assert "no UTC offset" in capsys.readouterr().err


def test_no_records_configured_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["modeler", "--dry-run"])
    assert status == 2
    assert "RPA_VAULT_ADDR" in capsys.readouterr().err
