"""The mcm job: its pure plan, and whole runs through the CLI against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
import sqlalchemy as sa
import yaml

from rpa.cli import main
from rpa.clients.aws import ClusterState
from rpa.clients.mcm import McmCluster
from rpa.inventory import Account, load_file, validate_records
from rpa.job import PlanResult
from rpa.mcm import (
    Limits,
    Observed,
    cluster_schedule_for,
    is_spot_loss,
    parse_cluster_name,
    plan_changes,
    rejection_message,
)
from rpa.plan import Action, Kind, guard_deletions
from rpa.sandbox import runtime
from rpa.sandbox.emr import end_as_spot_loss, find_moto_cluster
from rpa.sandbox.emr import main as interrupt_main
from rpa.sandbox.runtime import Servers, site_key
from rpa.schedule_rows import schedule_row_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
KST = dt.timezone(dt.timedelta(hours=9))
# Friday 2026-12-04 10:00 in Seoul: core time for MON-FRI 09:00-18:00.
CORE = dt.datetime(2026, 12, 4, 10, 0, tzinfo=KST)
# The same Friday at 19:00: outside core time.
OFF = CORE.replace(hour=19)
SITE = "https://mcm.example"
REGION = "ap-northeast-2"
SPARK = {"name": "spark", "release_label": "emr-7.2.0", "applications": ["Spark"],
         "master_instance_type": "m5.xlarge", "core_instance_type": "m5.xlarge",
         "core_count": 2, "market": "SPOT"}
HBASE = {**SPARK, "name": "hbase", "market": "ON_DEMAND", "keep_alive": True}
LOST = "The master node was terminated"
DEFAULT_LIMITS = Limits()


def _account(clusters: Sequence[dict[str, Any]] = (SPARK,)) -> Account:
    raw = {
        "password": {"user_a": {"username": "user_a", "password": "pw-Example-1!",
                                "start_date": "2026-12-01", "end_date": "2026-12-31"}},
        "modeler": {},
        "mcm": {"user_a": {
            "site": SITE,
            "schedule": {"days": "MON-FRI", "start": "09:00", "end": "18:00",
                         "holidays": "KR"},
            "clusters": list(clusters)}},
    }
    inventory = validate_records(raw)
    assert inventory.errors == []
    return inventory.accounts["user_a"]


def _cluster(cluster_id: str, state: str = "WAITING", *, name: str = "rpa-user_a/spark",
             age: dt.timedelta = dt.timedelta(hours=2), code: str | None = None,
             message: str | None = None, tags: tuple[tuple[str, str], ...] = ()
             ) -> ClusterState:
    return ClusterState(cluster_id, name, state, (CORE - age).astimezone(dt.UTC), code,
                        message, tags)


def _lost(cluster_id: str, name: str = "rpa-user_a/spark") -> ClusterState:
    return _cluster(cluster_id, "TERMINATED_WITH_ERRORS", name=name, code="INSTANCE_FAILURE",
                    message=LOST)


def _registered(cluster: ClusterState, account: str | None = "user_a") -> McmCluster:
    return McmCluster(cluster.id, cluster.name, "aws-emr", REGION, account)


def _observed(account: Account, now: dt.datetime, *, active: Sequence[ClusterState] = (),
              recent_errors: Sequence[ClusterState] = (),
              registered: Sequence[McmCluster] | None = None) -> Observed:
    """Observed state in step with the record, except for what the arguments give.

    By default every active cluster is registered in MCM and assigned to the account.
    """
    assert account.mcm is not None
    if registered is None:
        registered = [_registered(cluster) for cluster in active]
    observed = Observed(active=list(active), recent_errors=list(recent_errors))
    observed.registered = {SITE: {item.cluster_id: item for item in registered}}
    schedule = cluster_schedule_for(account.name, account.mcm)
    observed.schedules = {SITE: {account.name: schedule} if schedule else {}}
    observed.schedule_rows = {account.name: schedule_row_for(
        "mcm", account.name, account.mcm.schedule, now)}
    return observed


def _plan(account: Account, observed: Observed, now: dt.datetime,
          limits: Limits = DEFAULT_LIMITS) -> PlanResult:
    return plan_changes([account], observed, now=now, limits=limits)


def _kinds(result: PlanResult) -> list[tuple[str, str]]:
    return [(action.kind.value, action.target) for action in result.actions]


# Pure plan.

@pytest.mark.parametrize(("now", "active", "expected"), [
    # core time, no cluster: one is created
    (CORE, [], [("cluster.create", "spark")]),
    # core time, the cluster waits for work: nothing to do
    (CORE, [_cluster("j-1")], []),
    # core time, starting for 30 minutes, within the 45-minute limit: nothing to do
    (CORE, [_cluster("j-1", "STARTING", age=dt.timedelta(minutes=30))], []),
    # outside core time, the cluster runs: it is terminated
    (OFF, [_cluster("j-1", "RUNNING")], [("cluster.terminate_off_core", "spark/j-1")]),
    # outside core time, no cluster: nothing is created
    (OFF, [], []),
    # two ready clusters: the older one stays, the newer is a duplicate
    (CORE, [_cluster("j-1", age=dt.timedelta(hours=3)), _cluster("j-2")],
     [("cluster.terminate", "spark/j-2")]),
    # two starting clusters: the newer is the latest attempt and stays
    (CORE, [_cluster("j-1", "STARTING", age=dt.timedelta(minutes=20)),
            _cluster("j-2", "STARTING", age=dt.timedelta(minutes=5))],
     [("cluster.terminate", "spark/j-1")]),
    # a cluster of this job for a spec the record no longer lists is terminated
    (CORE, [_cluster("j-1"), _cluster("j-9", name="rpa-user_a/old")],
     [("cluster.terminate", "old/j-9")]),
    # another account's cluster does not count as this account's
    (CORE, [_cluster("j-5", name="rpa-user_b/spark")], [("cluster.create", "spark")]),
    # a cluster this job did not name is never touched
    (CORE, [_cluster("j-6", name="analytics")], [("cluster.create", "spark")]),
])
def test_plan_clusters(now: dt.datetime, active: list[ClusterState],
                       expected: list[tuple[str, str]]) -> None:
    account = _account()

    result = _plan(account, _observed(account, now, active=active), now)

    assert _kinds(result) == expected
    assert result.problems == []


def test_plan_create_carries_spec() -> None:
    account = _account()

    [create] = _plan(account, _observed(account, CORE), CORE).actions

    assert create.detail == "emr-7.2.0, master m5.xlarge, core 2 x m5.xlarge, SPOT"
    assert create.params["name"] == "rpa-user_a/spark"
    assert create.params["market"] == "SPOT"
    assert create.params["replaces"] is None
    assert create.params["site"] == SITE
    assert create.params["spec"].core_count == 2


@pytest.mark.parametrize(("registered", "expected"), [
    # running but unknown to MCM: registered, then assigned
    ([], [("cluster.register", "not registered in MCM"),
          ("cluster.assign", "nobody -> user_a")]),
    # registered and assigned to nobody: assigned
    ([McmCluster("j-1", "rpa-user_a/spark", "aws-emr", REGION, None)],
     [("cluster.assign", "nobody -> user_a")]),
    # registered and assigned to another account: assigned to its own account
    ([McmCluster("j-1", "rpa-user_a/spark", "aws-emr", REGION, "user_b")],
     [("cluster.assign", "user_b -> user_a")]),
    # an ended cluster still assigned to the account: unassigned
    ([McmCluster("j-1", "rpa-user_a/spark", "aws-emr", REGION, "user_a"),
      McmCluster("j-0", "rpa-user_a/spark", "aws-emr", REGION, "user_a")],
     [("cluster.unassign", "cluster no longer active")]),
    # an ended cluster this job did not name stays assigned
    ([McmCluster("j-1", "rpa-user_a/spark", "aws-emr", REGION, "user_a"),
      McmCluster("j-7", "shared", "aws-emr", REGION, "user_a")], []),
])
def test_plan_registration(registered: list[McmCluster],
                           expected: list[tuple[str, str]]) -> None:
    account = _account()
    observed = _observed(account, CORE, active=[_cluster("j-1")], registered=registered)

    result = _plan(account, observed, CORE)

    assert [(a.kind.value, a.detail) for a in result.actions] == expected


def test_plan_keep_alive_outside_core() -> None:
    account = _account([SPARK, HBASE])
    active = [_cluster("j-1"), _cluster("j-2", name="rpa-user_a/hbase")]

    result = _plan(account, _observed(account, OFF, active=active), OFF)

    assert _kinds(result) == [("cluster.terminate_off_core", "spark/j-1")]


def test_plan_keep_alive_created_in_core_only() -> None:
    account = _account([HBASE])

    in_core = _plan(account, _observed(account, CORE), CORE)
    off_core = _plan(account, _observed(account, OFF), OFF)

    assert [(a.kind.value, a.params["market"]) for a in in_core.actions] == [
        ("cluster.create", "ON_DEMAND")]
    assert off_core.actions == []


@pytest.mark.parametrize(("cluster", "expected"), [
    # EMR's reason when the Spot master node is reclaimed
    (_cluster("j", "TERMINATED_WITH_ERRORS", code="INSTANCE_FAILURE", message=LOST), True),
    # the same with a trailing period and without the optional code (as moto sends it)
    (_cluster("j", "TERMINATED_WITH_ERRORS", message=LOST + ". "), True),
    # an instance failure whose message names Spot
    (_cluster("j", "TERMINATED_WITH_ERRORS", code="INSTANCE_FAILURE",
              message="Spot capacity was reclaimed"), True),
    # a bootstrap failure is not a Spot loss, whatever its message
    (_cluster("j", "TERMINATED_WITH_ERRORS", code="BOOTSTRAP_FAILURE", message=LOST), False),
    # an instance failure of another kind
    (_cluster("j", "TERMINATED_WITH_ERRORS", code="INSTANCE_FAILURE",
              message="Instance failed its health check"), False),
    # "spot" only as a whole word
    (_cluster("j", "TERMINATED_WITH_ERRORS", code="INSTANCE_FAILURE",
              message="spotless log"), False),
    # a cluster terminated on request ended without errors
    (_cluster("j", "TERMINATED", code="USER_REQUEST", message="Terminated by user request"),
     False),
])
def test_is_spot_loss(cluster: ClusterState, expected: bool) -> None:
    assert is_spot_loss(cluster) is expected


@pytest.mark.parametrize(("losses", "fallback_after", "market", "detail_end"), [
    # one loss: created again on Spot, naming the lost cluster
    (["j-L1"], 2, "SPOT", "SPOT, again after Spot loss of j-L1"),
    # two losses within a day reach the default limit: On-Demand
    (["j-L1", "j-L2"], 2, "ON_DEMAND", "ON_DEMAND instead of SPOT after 2 Spot losses in 24 h"),
    # a higher limit keeps Spot after two losses
    (["j-L1", "j-L2"], 3, "SPOT", "SPOT, again after Spot loss of j-L2"),
])
def test_plan_spot_losses(losses: list[str], fallback_after: int, market: str,
                          detail_end: str) -> None:
    account = _account()
    recent = [_lost(cluster_id) for cluster_id in losses]

    result = _plan(account, _observed(account, CORE, recent_errors=recent), CORE,
                   Limits(spot_fallback_after=fallback_after))

    [create] = result.actions
    assert create.params["market"] == market
    assert create.detail.endswith(detail_end)


def test_plan_losses_of_other_clusters_ignored() -> None:
    account = _account()
    recent = [_lost("j-L1", "rpa-user_b/spark"), _lost("j-L2", "rpa-user_a/other"),
              _cluster("j-L3", "TERMINATED_WITH_ERRORS", code="BOOTSTRAP_FAILURE",
                       message="bootstrap action 1 failed")]

    [create] = _plan(account, _observed(account, CORE, recent_errors=recent), CORE).actions

    assert create.params["market"] == "SPOT"
    assert create.detail.endswith(", SPOT")


def test_plan_on_demand_spec_has_no_fallback() -> None:
    account = _account([{**SPARK, "market": "ON_DEMAND"}])
    recent = [_lost("j-L1"), _lost("j-L2")]

    [create] = _plan(account, _observed(account, CORE, recent_errors=recent), CORE).actions

    assert create.params["market"] == "ON_DEMAND"
    assert create.detail.endswith(", ON_DEMAND")


def test_plan_stuck_starting_replaced() -> None:
    account = _account()
    stuck = _cluster("j-1", "STARTING", age=dt.timedelta(minutes=50))
    observed = _observed(account, CORE, active=[stuck])
    observed.described = {"j-1": stuck}

    result = _plan(account, observed, CORE)

    assert _kinds(result) == [("cluster.terminate", "spark/j-1"), ("cluster.create", "spark")]
    assert result.actions[0].detail == (
        "STARTING, stuck in STARTING for more than 45 min; replaced")
    assert result.actions[1].params["replaces"] == "j-1"
    assert result.actions[1].detail.endswith(", replaces j-1")
    assert result.problems == []


def test_plan_stuck_replacement_only_reported() -> None:
    account = _account()
    stuck = _cluster("j-2", "STARTING", age=dt.timedelta(minutes=50),
                     tags=(("rpa:replaces", "j-1"),))
    observed = _observed(account, CORE, active=[stuck])
    observed.described = {"j-2": stuck}

    result = _plan(account, observed, CORE)

    assert result.actions == []
    assert [(p.account, p.field) for p in result.problems] == [("user_a", "mcm.clusters[0]")]
    assert "already replaced j-1" in result.problems[0].message


def test_plan_stuck_limit_is_a_setting() -> None:
    account = _account()
    stuck = _cluster("j-1", "STARTING", age=dt.timedelta(minutes=50))
    observed = _observed(account, CORE, active=[stuck])

    result = _plan(account, observed, CORE, Limits(starting_limit=dt.timedelta(hours=1)))

    assert result.actions == []


def test_plan_stuck_describe_error_is_problem() -> None:
    account = _account()
    stuck = _cluster("j-1", "STARTING", age=dt.timedelta(minutes=50))
    observed = _observed(account, CORE, active=[stuck])
    observed.describe_errors = {"j-1": "emr DescribeCluster on j-1 failed: Throttling"}

    result = _plan(account, observed, CORE)

    assert result.actions == []
    assert [p.message for p in result.problems] == [
        "emr DescribeCluster on j-1 failed: Throttling"]


def test_plan_emr_error_is_problem() -> None:
    account = _account()
    observed = _observed(account, CORE)
    observed.emr_error = "emr ListClusters on STARTING failed: Throttling"
    observed.schedule_rows = {}

    result = _plan(account, observed, CORE)

    assert [(p.field, p.message) for p in result.problems] == [
        ("mcm.clusters", "emr ListClusters on STARTING failed: Throttling")]
    assert _kinds(result) == [("schedule_row.upsert", "user_a")]


def test_plan_site_error_is_problem() -> None:
    account = _account()
    observed = _observed(account, CORE, active=[_cluster("j-1")], registered=[])
    observed.registered, observed.schedules = {}, {}
    observed.site_errors = {SITE: "mcm GET /api/v1/clusters failed with HTTP 500"}

    result = _plan(account, observed, CORE)

    assert [p.field for p in result.problems] == ["mcm.site"]
    assert result.actions == []


@pytest.mark.parametrize(("clusters", "current", "expected"), [
    # no schedule in MCM yet: written
    ([SPARK], None, [("mcm_schedule.put", "none -> MON-FRI 09:00-18:00 Asia/Seoul holidays KR")]),
    # MCM shows another end time: written again
    ([SPARK], "18:30", [("mcm_schedule.put", "MON-FRI 09:00-18:30 Asia/Seoul holidays KR -> "
                                             "MON-FRI 09:00-18:00 Asia/Seoul holidays KR")]),
    # the record lists no cluster: MCM's schedule is deleted
    ([], "18:00", [("mcm_schedule.delete", "MON-FRI 09:00-18:00 Asia/Seoul holidays KR -> "
                                           "none, the record lists no cluster")]),
    # no cluster and no schedule: nothing to do
    ([], None, []),
])
def test_plan_mcm_schedule(clusters: list[dict[str, Any]], current: str | None,
                           expected: list[tuple[str, str]]) -> None:
    account = _account(clusters)
    observed = _observed(account, OFF)
    schedule = cluster_schedule_for("user_a", _account().mcm)  # type: ignore[arg-type]
    assert schedule is not None
    observed.schedules = {SITE: {} if current is None else {
        "user_a": schedule.__class__(**{**schedule.__dict__, "end": current})}}

    result = _plan(account, observed, OFF)

    assert [(a.kind.value, a.detail) for a in result.actions] == expected


def test_plan_schedule_row_when_missing() -> None:
    account = _account()
    observed = _observed(account, OFF)
    observed.schedule_rows = {}

    [row] = _plan(account, observed, OFF).actions

    assert row.kind is Kind.SCHEDULE_ROW_UPSERT
    # Monday 2026-12-07 09:00 KST is the next switch on.
    assert row.params["row"].next_on_at == dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)


def test_plan_schedule_row_next_switches_only() -> None:
    account = _account()
    observed = _observed(account, CORE)

    [row] = _plan(account, observed, OFF).actions

    # At 10:00 the next switch off was today 18:00 KST; at 19:00 it is Monday's.
    assert row.detail == "next on 2026-12-07T00:00Z, next off 2026-12-07T09:00Z"


@pytest.mark.parametrize(("name", "expected"), [
    # the names this job gives
    ("rpa-trial_user03/spark", ("trial_user03", "spark")),
    ("rpa-a-b/c-d", ("a-b", "c-d")),
    # names of others
    ("analytics", None),
    ("rpa-trial_user03", None),
    ("rpa-/spark", None),
    ("rpa-a/b/c", None),
])
def test_parse_cluster_name(name: str, expected: tuple[str, str] | None) -> None:
    assert parse_cluster_name(name) == expected


def test_rejection_message_names_field() -> None:
    spec = _account([{**SPARK, "core_instance_type": "m5.huge"}]).mcm.clusters[0]  # type: ignore[union-attr]

    message = rejection_message("user_a", 0, spec, "ValidationException: Instance type "
                                                  "'m5.huge' is not supported")

    assert message.startswith("user_a: EMR rejected cluster 'spark' "
                              "(mcm.clusters[0].core_instance_type = m5.huge): ")


def _terminations(kind: Kind, count: int) -> list[Action]:
    return [Action(f"user_{index}", kind, f"spark/j-{index}") for index in range(count)]


def test_guard_off_core_not_counted() -> None:
    actions = _terminations(Kind.CLUSTER_TERMINATE_OFF_CORE, 5)

    guarded, notice = guard_deletions(actions, records_complete=True, max_deletes=1,
                                      allow_mass_delete=False)

    assert notice is None
    assert [a.blocked for a in guarded] == [None] * 5


def test_guard_counts_other_terminations() -> None:
    actions = (_terminations(Kind.CLUSTER_TERMINATE_OFF_CORE, 3)
               + _terminations(Kind.CLUSTER_TERMINATE, 2))

    guarded, notice = guard_deletions(actions, records_complete=True, max_deletes=1,
                                      allow_mass_delete=False)

    assert notice == ("2 deletions exceed --max-deletes 1: rerun with --allow-mass-delete "
                      "to apply them")
    assert [a.blocked is None for a in guarded] == [True, True, True, False, False]


def test_guard_withholds_all_when_incomplete() -> None:
    actions = (_terminations(Kind.CLUSTER_TERMINATE_OFF_CORE, 1)
               + _terminations(Kind.CLUSTER_TERMINATE, 1)
               + [Action("user_a", Kind.CLUSTER_CREATE, "spark")])

    guarded, notice = guard_deletions(actions, records_complete=False, max_deletes=10,
                                      allow_mass_delete=True)

    assert notice is not None and notice.startswith("records incomplete")
    assert [a.blocked is not None for a in guarded] == [True, True, False]


# Whole runs through the CLI against the sandbox (the `sandbox` fixture of conftest.py).

MCM_SITE = "https://mcm.trial.accuinsight.example"
# Accounts in their period and in core time at CORE; trial_user30 has a second cluster, hbase,
# kept alive outside core time.
IN_CORE = ["trial_user03", "trial_user06", "trial_user12", "trial_user15", "trial_user18",
           "trial_user21", "trial_user24", "trial_user27", "trial_user30"]
# Accounts in their period with an mcm record.
IN_PERIOD = 20


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main(["mcm", "--sandbox", "--output", "json", *args])
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads(out)
    return status, report


def emr(sandbox: Servers) -> Any:
    return boto3.client("emr", endpoint_url=sandbox.endpoints.aws_url, region_name=REGION)


def clusters_by_name(sandbox: Servers, states: Sequence[str] = ("WAITING",)
                     ) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for cluster in emr(sandbox).list_clusters(ClusterStates=list(states))["Clusters"]:
        found.setdefault(cluster["Name"], []).append(cluster["Id"])
    return found


def lose_to_spot(cluster_id: str) -> None:
    """End the cluster as a Spot loss, created an hour before CORE whatever the clock says."""
    end_as_spot_loss(cluster_id)
    find_moto_cluster(cluster_id).creation_datetime = (
        CORE - dt.timedelta(hours=1)).astimezone(dt.UTC).replace(tzinfo=None)


def test_dry_run_writes_nothing(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "--dry-run", "--now", CORE.isoformat())

    assert status == 0
    assert report["dry_run"] is True
    assert sum(a["kind"] == "cluster.create" for a in report["actions"]) == 10
    assert {a["status"] for a in report["actions"]} == {"planned"}
    assert {method for (_, method, _) in sandbox.platform.calls} == {"GET"}
    assert emr(sandbox).list_clusters()["Clusters"] == []
    # A dry-run does not even create the tables.
    with sa.create_engine(sandbox.endpoints.db_url).connect() as conn:
        assert sa.inspect(conn).get_table_names() == []


def test_core_time_creates_then_nothing(sandbox: Servers,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, first = run_json(capsys, "--now", CORE.isoformat())
    status_again, second = run_json(capsys, "--now", CORE.isoformat())

    assert status == 0
    assert first["summary"]["failed"] == 0
    created = sorted(a["account"] for a in first["actions"] if a["kind"] == "cluster.create")
    assert created == sorted([*IN_CORE, "trial_user30"])
    running = clusters_by_name(sandbox)
    assert sorted(running) == sorted([f"rpa-{name}/spark" for name in IN_CORE]
                                     + ["rpa-trial_user30/hbase"])
    assert all(len(ids) == 1 for ids in running.values())
    registered = {c["cluster_id"]: c for c in sandbox.platform.mcm.clusters(site_key(MCM_SITE))}
    [user03_id] = running["rpa-trial_user03/spark"]
    assert registered[user03_id]["account"] == "trial_user03"
    assert registered[user03_id]["provider"] == "aws-emr"
    assert len(registered) == 10
    assert len(sandbox.platform.mcm.schedules(site_key(MCM_SITE))) == IN_PERIOD
    assert status_again == 0
    assert second["actions"] == []


def test_created_cluster_tags_and_market(sandbox: Servers,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user30")
    running = clusters_by_name(sandbox)

    [spark] = running["rpa-trial_user30/spark"]
    [hbase] = running["rpa-trial_user30/hbase"]
    tags = {t["Key"]: t["Value"] for t in emr(sandbox).describe_cluster(
        ClusterId=spark)["Cluster"]["Tags"]}
    markets = {g["Market"] for g in emr(sandbox).list_instance_groups(
        ClusterId=hbase)["InstanceGroups"]}

    assert tags == {"managed-by": "accuinsight-rpa", "rpa:account": "trial_user30",
                    "rpa:cluster": "spark"}
    assert markets == {"ON_DEMAND"}


def test_off_core_terminates_keeps_keep_alive(sandbox: Servers,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat())
    hbase = clusters_by_name(sandbox)["rpa-trial_user30/hbase"]

    status, report = run_json(capsys, "--now", OFF.isoformat())
    status_again, again = run_json(capsys, "--now", OFF.isoformat())

    assert status == 0
    terminated = sorted(a["account"] for a in report["actions"]
                        if (a["kind"], a["status"]) == ("cluster.terminate_off_core", "done"))
    assert terminated == IN_CORE
    assert clusters_by_name(sandbox) == {"rpa-trial_user30/hbase": hbase}
    assignments = {c["name"]: c["account"]
                   for c in sandbox.platform.mcm.clusters(site_key(MCM_SITE))}
    assert assignments["rpa-trial_user03/spark"] is None
    assert assignments["rpa-trial_user30/hbase"] == "trial_user30"
    assert status_again == 0
    assert again["actions"] == []


def test_off_core_not_limited_by_max_deletes(sandbox: Servers,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat())

    status, report = run_json(capsys, "--now", OFF.isoformat(), "--max-deletes", "1")

    assert status == 0
    assert report["notice"] is None
    terminations = [a["status"] for a in report["actions"]
                    if a["kind"] == "cluster.terminate_off_core"]
    assert terminations == ["done"] * 9


def test_spot_loss_recreated(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")
    [lost] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    lose_to_spot(lost)

    status, report = run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")

    assert status == 0
    details = [(a["kind"], a["status"], a["detail"]) for a in report["actions"]]
    assert details == [
        ("cluster.create", "done",
         f"emr-7.2.0, master m5.xlarge, core 2 x m5.xlarge, SPOT, again after Spot loss of "
         f"{lost}"),
        ("cluster.unassign", "done", "cluster no longer active")]
    [new] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    assert new != lost
    markets = {g["Market"] for g in emr(sandbox).list_instance_groups(
        ClusterId=new)["InstanceGroups"]}
    assert markets == {"SPOT"}


def test_interrupt_command_ends_cluster(sandbox: Servers,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")
    [cluster_id] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]

    status = interrupt_main(["interrupt", cluster_id])
    printed = json.loads(capsys.readouterr().out)

    assert status == 0
    assert printed == {"cluster_id": cluster_id, "state": "TERMINATED_WITH_ERRORS",
                       "message": LOST}
    [ended] = emr(sandbox).list_clusters(ClusterStates=["TERMINATED_WITH_ERRORS"])["Clusters"]
    assert ended["Id"] == cluster_id
    assert ended["Status"]["StateChangeReason"]["Message"] == LOST


def test_second_loss_falls_back_on_demand(sandbox: Servers,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--now", CORE.isoformat(), "--account", "trial_user03")
    run_json(capsys, *args)
    [first] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    lose_to_spot(first)
    _, after_first = run_json(capsys, *args)
    [second] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    lose_to_spot(second)

    _, after_second = run_json(capsys, *args)

    creates = [a["detail"] for report in (after_first, after_second)
               for a in report["actions"] if a["kind"] == "cluster.create"]
    assert creates[0].endswith(f"SPOT, again after Spot loss of {first}")
    assert creates[1].endswith("ON_DEMAND instead of SPOT after 2 Spot losses in 24 h")
    [third] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    markets = {g["Market"] for g in emr(sandbox).list_instance_groups(
        ClusterId=third)["InstanceGroups"]}
    assert markets == {"ON_DEMAND"}


def test_stuck_starting_replaced_once(sandbox: Servers,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--now", CORE.isoformat(), "--account", "trial_user03")
    run_json(capsys, *args)
    [stuck] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    make_stuck(stuck)

    status, report = run_json(capsys, *args)
    [replacement] = clusters_by_name(sandbox, ["STARTING", "WAITING"])["rpa-trial_user03/spark"]
    make_stuck(replacement)
    status_again, again = run_json(capsys, *args)

    assert status == 0
    assert [(a["kind"], a["target"], a["status"]) for a in report["actions"]] == [
        ("cluster.terminate", f"spark/{stuck}", "done"), ("cluster.create", "spark", "done")]
    assert "stuck in STARTING for more than 45 min" in report["actions"][0]["detail"]
    tags = {t["Key"]: t["Value"] for t in emr(sandbox).describe_cluster(
        ClusterId=replacement)["Cluster"]["Tags"]}
    assert tags["rpa:replaces"] == stuck
    assert status_again == 1
    assert again["actions"] == []
    assert [(e["account"], e["field"]) for e in again["errors"]] == [
        ("trial_user03", "mcm.clusters[0]")]
    assert f"already replaced {stuck}" in again["errors"][0]["message"]


def make_stuck(cluster_id: str) -> None:
    cluster = find_moto_cluster(cluster_id)
    cluster.state = "STARTING"
    cluster.creation_datetime = (CORE - dt.timedelta(minutes=50)).astimezone(
        dt.UTC).replace(tzinfo=None)


def test_schedule_rows_on_mariadb(sandbox: Servers, mysql_url: str,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_DB_URL", mysql_url)

    status, report = run_json(capsys, "--now", CORE.isoformat())
    status_again, again = run_json(capsys, "--now", CORE.isoformat())

    engine = sa.create_engine(mysql_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT account, days, next_on_at, next_off_at FROM rpa_schedule "
            "WHERE job = 'mcm'")).all()
        logged = conn.execute(sa.text("SELECT COUNT(*) FROM rpa_action_log WHERE run_id = :r"),
                              {"r": report["run_id"]}).scalar()
    engine.dispose()
    assert status == 0
    assert status_again == 0
    assert again["actions"] == []
    assert len(rows) == IN_PERIOD
    assert logged == len(report["actions"])
    by_account = {account: (days, on, off) for account, days, on, off in rows}
    # Friday 18:00 KST is 09:00 UTC; the next start is Monday 09:00 KST.
    assert by_account["trial_user03"] == ("MON-FRI", dt.datetime(2026, 12, 7, 0, 0),
                                          dt.datetime(2026, 12, 4, 9, 0))
    # TUE,THU 10:00-20:00: next Tuesday 10:00 KST is 01:00 UTC.
    assert by_account["trial_user02"][:2] == ("TUE,THU", dt.datetime(2026, 12, 8, 1, 0))


@pytest.fixture
def bad_inventory(tmp_path: Path) -> Path:
    raw = load_file(EXAMPLES)
    raw["mcm"]["trial_user08"]["clusters"][0]["market"] = "RESERVED"
    raw["mcm"]["trial_user09"]["clusters"][0]["core_count"] = 0
    raw["mcm"]["trial_user06"]["clusters"][0]["master_instance_type"] = "m5.huge"
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_invalid_records_and_rejected_type(sandbox: Servers, bad_inventory: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, report = run_json(capsys, "--inventory", str(bad_inventory),
                              "--now", CORE.isoformat())

    assert status == 1
    assert sorted((e["account"], e["field"]) for e in report["errors"]) == [
        ("trial_user08", "mcm.clusters[0].market"), ("trial_user09", "mcm.clusters[0].core_count")]
    assert "RESERVED" in next(e["message"] for e in report["errors"]
                              if e["account"] == "trial_user08")
    [rejected] = [a for a in report["actions"] if a["status"] == "failed"]
    assert (rejected["account"], rejected["kind"]) == ("trial_user06", "cluster.create")
    assert rejected["error"].startswith(
        "trial_user06: EMR rejected cluster 'spark' "
        "(mcm.clusters[0].master_instance_type = m5.huge): ")
    created = {a["account"] for a in report["actions"]
               if (a["kind"], a["status"]) == ("cluster.create", "done")}
    assert created == set(IN_CORE) - {"trial_user06"}
    assert "rpa-trial_user06/spark" not in clusters_by_name(sandbox, ["STARTING", "WAITING"])


def test_terminations_withheld_when_record_invalid(sandbox: Servers, bad_inventory: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat())
    before = clusters_by_name(sandbox)

    status, report = run_json(capsys, "--inventory", str(bad_inventory),
                              "--now", OFF.isoformat())

    assert status == 1
    terminations = [a for a in report["actions"] if a["kind"] == "cluster.terminate_off_core"]
    assert len(terminations) == 9
    assert {a["status"] for a in terminations} == {"skipped"}
    assert all("records incomplete" in a["error"] for a in terminations)
    assert clusters_by_name(sandbox) == before


def test_emr_error_fails_one_account(sandbox: Servers, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat())
    [failing] = clusters_by_name(sandbox)["rpa-trial_user12/spark"]
    fail_termination_of(monkeypatch, failing)

    status, report = run_json(capsys, "--now", OFF.isoformat())

    assert status == 1
    failed = [a for a in report["actions"] if a["status"] == "failed"]
    assert [(a["account"], a["kind"]) for a in failed] == [
        ("trial_user12", "cluster.terminate_off_core")]
    assert "InternalServerError" in failed[0]["error"]
    done = {a["account"] for a in report["actions"]
            if (a["kind"], a["status"]) == ("cluster.terminate_off_core", "done")}
    assert done == set(IN_CORE) - {"trial_user12"}
    assert sorted(clusters_by_name(sandbox)) == ["rpa-trial_user12/spark",
                                                 "rpa-trial_user30/hbase"]


def fail_termination_of(monkeypatch: pytest.MonkeyPatch, cluster_id: str) -> None:
    """Make EMR answer TerminateJobFlows for this cluster with a server error."""
    original = runtime.SandboxEndpoints.boto_session

    def fail(params: dict[str, Any], **_: Any) -> None:
        if cluster_id in params.get("JobFlowIds", []):
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "internal failure"},
                 "ResponseMetadata": {"HTTPStatusCode": 500}}, "TerminateJobFlows")

    def session_with_fault(self: runtime.SandboxEndpoints, settings: Any) -> boto3.Session:
        session = original(self, settings)
        session.events.register("before-parameter-build.emr.TerminateJobFlows", fail)
        return session

    monkeypatch.setattr(runtime.SandboxEndpoints, "boto_session", session_with_fault)


def test_untagged_cluster_left_running(sandbox: Servers,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")
    [cluster_id] = clusters_by_name(sandbox)["rpa-trial_user03/spark"]
    emr(sandbox).remove_tags(ResourceId=cluster_id, TagKeys=["managed-by"])

    status, report = run_json(capsys, "--now", OFF.isoformat(), "--account", "trial_user03")

    assert status == 1
    [terminate] = [a for a in report["actions"] if a["kind"] == "cluster.terminate_off_core"]
    assert terminate["status"] == "failed"
    assert "lacks the tags managed-by=accuinsight-rpa" in terminate["error"]
    assert clusters_by_name(sandbox)["rpa-trial_user03/spark"] == [cluster_id]


def test_mcm_failure_registers_next_run(sandbox: Servers,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.platform.fail_next(method="POST", path_contains="/api/v1/clusters", status=503)

    status, report = run_json(capsys, "--now", CORE.isoformat(), "--account", "trial_user03")
    status_again, again = run_json(capsys, "--now", CORE.isoformat(),
                                   "--account", "trial_user03")

    assert status == 1
    [create] = [a for a in report["actions"] if a["kind"] == "cluster.create"]
    assert create["status"] == "failed"
    assert "started, but its MCM registration failed" in create["error"]
    assert status_again == 0
    assert [(a["kind"], a["status"]) for a in again["actions"]] == [
        ("cluster.register", "done"), ("cluster.assign", "done")]
    assert [c["account"] for c in sandbox.platform.mcm.clusters(site_key(MCM_SITE))] == [
        "trial_user03"]


def test_text_output_korean(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    main(["mcm", "--sandbox", "--dry-run", "--now", CORE.isoformat()])
    korean = capsys.readouterr().out
    main(["mcm", "--sandbox", "--dry-run", "--now", CORE.isoformat(), "--lang", "en"])
    english = capsys.readouterr().out

    assert "[mcm] 실행 계획" in korean
    assert "EMR 클러스터 생성  spark" in korean
    assert "MCM 클러스터 코어 타임 기록" in korean
    assert "create EMR cluster  spark" in english
