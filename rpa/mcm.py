"""The mcm job: EMR clusters of every account in its usage period, registered in MCM.

The job runs every 30 minutes and looks at each account in its period and each cluster of
its `mcm/<account>` record. In core time it creates the cluster when none of it is active,
registers it in MCM and assigns it to the account. Outside core time it terminates the
cluster and unassigns it, unless the record sets `keep_alive`. A cluster lost with its Spot
capacity is created again, and On-Demand after `spot_fallback_after` losses within a day. A
cluster stuck in STARTING is replaced once. The job also keeps the account's cluster core
time in MCM and its schedule row in the platform database. Accounts before or after their
period are left alone (the end-of-service job releases expired ones).

Clusters are found from one ListClusters call alone, by their name `rpa-<account>/<cluster>`.
Neither account names nor cluster names may contain "/", so a name splits back into both
without ambiguity. Tags mark what this job made, and a cluster is terminated only after
DescribeCluster shows those tags for the account.

Run as `python -m rpa.mcm` or `rpa mcm`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from rpa.clients import errors
from rpa.clients.aws import (
    ACCOUNT_TAG,
    ACTIVE_CLUSTER_STATES,
    CLUSTER_TAG,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    REPLACES_TAG,
    ClusterRequest,
    ClusterState,
)
from rpa.clients.db import ScheduleRow
from rpa.clients.mcm import ClusterSchedule, McmCluster
from rpa.inventory import Account, ClusterSpec, Inventory, McmRecord, today_in_service_zone
from rpa.job import PlanResult, Run
from rpa.parallel import read_all
from rpa.plan import Action, Kind, Problem
from rpa.schedule_rows import schedule_row_for

log = logging.getLogger(__name__)

JOB = "mcm"
NAME_PREFIX = "rpa-"
READY_STATES = ("RUNNING", "WAITING")
ERROR_STATE = "TERMINATED_WITH_ERRORS"
# Spot losses are counted over this window before the next cluster falls back to On-Demand.
SPOT_LOSS_WINDOW = dt.timedelta(hours=24)

# Recognition of a Spot loss. EMR gives no reason code for Spot. The state change codes of a
# cluster are INTERNAL_ERROR, VALIDATION_ERROR, INSTANCE_FAILURE, INSTANCE_FLEET_TIMEOUT,
# BOOTSTRAP_FAILURE, USER_REQUEST, STEP_FAILURE and ALL_STEPS_COMPLETED (EMR API reference,
# ClusterStateChangeReason). A SPOT cluster of this job runs its master node on Spot as well,
# and a cluster ends when its master node goes. A reclaimed Spot master therefore ends the
# cluster in TERMINATED_WITH_ERRORS with INSTANCE_FAILURE and the message "The master node
# was terminated", seen with and without a trailing period. A message that names Spot under
# INSTANCE_FAILURE counts too. The API marks the code optional (moto never sends one), so a
# reason without a code is judged by its message alone.
SPOT_LOSS_CODES = frozenset({"INSTANCE_FAILURE", None})
SPOT_LOSS_MESSAGE = re.compile(r"master node was terminated|\bspot\b", re.IGNORECASE)
# NOTE: a master node that fails for another reason reads the same and is counted as a Spot
# loss. The response is the same (create the cluster again), and at worst the On-Demand
# fallback comes one failure early.


@dataclass(frozen=True)
class Limits:
    """The settings that shape the plan, so that `plan_changes` needs no Settings."""

    spot_fallback_after: int = 2
    starting_limit: dt.timedelta = dt.timedelta(minutes=45)


@dataclass
class Observed:
    """The observed state of EMR, MCM and the database that the plan compares with.

    `active` is empty and `emr_error` set when ListClusters failed. `described` contains the
    clusters stuck in STARTING, with their tags. An MCM site that could not be read has an
    entry in `site_errors` and none in `registered` or `schedules`.
    """

    active: list[ClusterState] = field(default_factory=list)
    recent_errors: list[ClusterState] = field(default_factory=list)
    described: dict[str, ClusterState] = field(default_factory=dict)
    describe_errors: dict[str, str] = field(default_factory=dict)
    emr_error: str | None = None
    registered: dict[str, dict[str, McmCluster]] = field(default_factory=dict)
    schedules: dict[str, dict[str, ClusterSchedule]] = field(default_factory=dict)
    site_errors: dict[str, str] = field(default_factory=dict)
    schedule_rows: dict[str, ScheduleRow] = field(default_factory=dict)


class McmJob:
    name = JOB

    def plan(self, run: Run, inventory: Inventory) -> PlanResult:
        today = today_in_service_zone(run.now)
        accounts = [account for account in inventory.accounts.values()
                    if account.mcm is not None and account.is_in_period(today)]
        limits = Limits(run.settings.spot_fallback_after,
                        dt.timedelta(minutes=run.settings.emr_starting_limit_minutes))
        observed = observe(run, accounts, limits)
        return plan_changes(accounts, observed, now=run.now, limits=limits)

    def apply(self, run: Run, action: Action) -> None:
        apply_action(run, action)

    def warm_up(self, run: Run) -> None:
        """Build the EMR client of the observe step before the records are read."""
        run.env.emr()


def cluster_name(account: str, spec: str) -> str:
    return f"{NAME_PREFIX}{account}/{spec}"


def parse_cluster_name(name: str) -> tuple[str, str] | None:
    """Return (account, cluster) of a name that this job gives, or None for any other."""
    if not name.startswith(NAME_PREFIX):
        return None
    account, slash, spec = name.removeprefix(NAME_PREFIX).partition("/")
    if not (account and slash and spec) or "/" in spec:
        return None
    return account, spec


def is_spot_loss(cluster: ClusterState) -> bool:
    return (cluster.state == ERROR_STATE
            and cluster.state_change_code in SPOT_LOSS_CODES
            and SPOT_LOSS_MESSAGE.search(cluster.state_change_message or "") is not None)


def is_stuck(cluster: ClusterState, now: dt.datetime, limit: dt.timedelta) -> bool:
    return cluster.state == "STARTING" and now - cluster.created_at > limit


# Observe: one ListClusters for the active clusters of every account, one for recent errors,
# and two listings per MCM site. DescribeCluster is called only for clusters stuck in STARTING.

def observe(run: Run, accounts: Sequence[Account], limits: Limits) -> Observed:
    """Read EMR, every MCM site and the schedule rows of this job.

    The listings do not depend on each other, so up to RPA_CONCURRENCY of them are read at
    the same time. A failed EMR listing sets `emr_error`, and a failed site listing adds an
    entry to `site_errors`. A database that cannot be read stops the run.
    """
    observed = Observed()
    sites = sorted({_mcm(account).site for account in accounts})
    # The errors of the last day matter only where a cluster may be created now.
    creating = any(_mcm(account).clusters and _mcm(account).schedule.is_active(run.now)
                   for account in accounts)
    emr_reads: list[Callable[[], object]] = []
    if accounts:
        emr_reads.append(lambda: run.env.emr().list_clusters(ACTIVE_CLUSTER_STATES))
    if accounts and creating:
        emr_reads.append(lambda: run.env.emr().list_clusters(
            [ERROR_STATE], created_after=run.now - SPOT_LOSS_WINDOW))
    site_reads: list[Callable[[], object]] = []
    for site in sites:
        site_reads += [functools.partial(_list_registered, run, site),
                       functools.partial(_list_schedules, run, site)]
    results = read_all([*emr_reads, *site_reads,
                        lambda: run.env.database().read_schedule_rows(JOB)],
                       workers=run.settings.concurrency)
    rows = results.pop()
    if isinstance(rows, errors.ClientError):
        raise rows
    observed.schedule_rows = cast(dict[str, ScheduleRow], rows)
    _collect_sites(sites, results[len(emr_reads):], observed)
    if emr_reads:
        _collect_emr(run, accounts, limits, results[:len(emr_reads)], observed)
    return observed


def _list_registered(run: Run, site: str) -> dict[str, McmCluster]:
    return {cluster.cluster_id: cluster for cluster in run.env.mcm(site).list_clusters()}


def _list_schedules(run: Run, site: str) -> dict[str, ClusterSchedule]:
    return {schedule.account: schedule for schedule in run.env.mcm(site).list_schedules()}


def _collect_sites(sites: Sequence[str], results: Sequence[object], observed: Observed) -> None:
    """Keep the clusters and schedules of each site whose two listings both succeeded."""
    for index, site in enumerate(sites):
        registered, schedules = results[2 * index], results[2 * index + 1]
        failed = next((result for result in (registered, schedules)
                       if isinstance(result, errors.ClientError)), None)
        if failed is not None:
            log.error("cannot read MCM site %s: %s", site, failed)
            observed.site_errors[site] = str(failed)
            continue
        observed.registered[site] = cast(dict[str, McmCluster], registered)
        observed.schedules[site] = cast(dict[str, ClusterSchedule], schedules)


def _collect_emr(run: Run, accounts: Sequence[Account], limits: Limits,
                 results: Sequence[object], observed: Observed) -> None:
    """Keep the EMR listings, then describe the clusters of this job stuck in STARTING."""
    failed = next((result for result in results if isinstance(result, errors.ClientError)),
                  None)
    if failed is not None:
        log.error("cannot list EMR clusters: %s", failed)
        observed.emr_error = str(failed)
        return
    observed.active = cast(list[ClusterState], results[0])
    if len(results) > 1:
        observed.recent_errors = cast(list[ClusterState], results[1])
    names = {cluster_name(account.name, spec.name)
             for account in accounts for spec in _mcm(account).clusters}
    emr = run.env.emr()
    for cluster in observed.active:
        if cluster.name in names and is_stuck(cluster, run.now, limits.starting_limit):
            try:
                observed.described[cluster.id] = emr.describe_cluster(cluster.id)
            except errors.ClientError as err:
                log.error("cannot describe EMR cluster %s: %s", cluster.id, err)
                observed.describe_errors[cluster.id] = str(err)


# Plan: pure, from records, observed state and `now`.

def plan_changes(accounts: Iterable[Account], observed: Observed, *, now: dt.datetime,
                 limits: Limits) -> PlanResult:
    """Return the actions and problems for the accounts in their usage period."""
    result = PlanResult()
    index = index_clusters(observed)
    for account in sorted(accounts, key=lambda item: item.name):
        record = _mcm(account)
        site_error = observed.site_errors.get(record.site)
        if site_error is not None:
            result.problems.append(Problem(account.name, "mcm.site", site_error))
        if observed.emr_error is not None:
            result.problems.append(Problem(account.name, "mcm.clusters", observed.emr_error))
        else:
            _plan_clusters(account, observed, index, now, limits, result)
        if site_error is None:
            _plan_mcm_schedule(account, observed.schedules[record.site].get(account.name),
                               result)
        _plan_schedule_row(account, observed.schedule_rows.get(account.name), now, result)
    return result


@dataclass(frozen=True)
class ClusterIndex:
    """The active clusters and MCM registrations of each account, sorted out once per plan.

    Looking them up per account in the whole listings would make the plan quadratic in the
    number of accounts.
    """

    # Account, then cluster name of the record, then its active clusters in listing order.
    active: dict[str, dict[str, list[ClusterState]]]
    active_ids: frozenset[str]
    # (site, account): the registrations named and assigned for the account, by cluster id.
    registered: dict[tuple[str, str], list[McmCluster]]


def index_clusters(observed: Observed) -> ClusterIndex:
    active: dict[str, dict[str, list[ClusterState]]] = {}
    for cluster in observed.active:
        parsed = parse_cluster_name(cluster.name)
        if parsed is not None:
            active.setdefault(parsed[0], {}).setdefault(parsed[1], []).append(cluster)
    registered: dict[tuple[str, str], list[McmCluster]] = {}
    for site, clusters in observed.registered.items():
        for found in sorted(clusters.values(), key=lambda c: c.cluster_id):
            parsed = parse_cluster_name(found.name)
            if parsed is not None and found.account == parsed[0]:
                registered.setdefault((site, parsed[0]), []).append(found)
    return ClusterIndex(active, frozenset(cluster.id for cluster in observed.active),
                        registered)


def _plan_clusters(account: Account, observed: Observed, clusters_of: ClusterIndex,
                   now: dt.datetime, limits: Limits, result: PlanResult) -> None:
    record = _mcm(account)
    mine = {name: list(clusters)
            for name, clusters in clusters_of.active.get(account.name, {}).items()}
    for index, spec in enumerate(record.clusters):
        _plan_spec(account, index, spec, mine.pop(spec.name, []), observed, now, limits,
                   result)
    for spec_name, clusters in sorted(mine.items()):
        for cluster in clusters:
            result.actions.append(_terminate(account, Kind.CLUSTER_TERMINATE, spec_name,
                                             cluster, "not in the record"))
    if record.site in observed.registered:
        _plan_unassign_ended(account, clusters_of.registered.get((record.site, account.name), []),
                             clusters_of.active_ids, result)


def _plan_spec(account: Account, index: int, spec: ClusterSpec,
               clusters: list[ClusterState], observed: Observed, now: dt.datetime,
               limits: Limits, result: PlanResult) -> None:
    """Plan one cluster of the record from its active clusters (normally one or none)."""
    in_core = _mcm(account).schedule.is_active(now)
    if not clusters:
        if in_core:
            result.actions.append(_create(account, index, spec, observed, limits))
        return
    if not in_core and not spec.keep_alive:
        for cluster in clusters:
            result.actions.append(_terminate(account, Kind.CLUSTER_TERMINATE_OFF_CORE,
                                             spec.name, cluster, "outside core time"))
        return
    keeper, duplicates = pick_keeper(clusters)
    for duplicate in duplicates:
        result.actions.append(_terminate(account, Kind.CLUSTER_TERMINATE, spec.name,
                                         duplicate, f"duplicate of {keeper.id}"))
    replaced = (in_core and is_stuck(keeper, now, limits.starting_limit)
                and _plan_stuck(account, index, spec, keeper, observed, limits, result))
    if replaced:
        return
    _plan_registration(account, spec.name, keeper, observed, result)


def pick_keeper(clusters: Sequence[ClusterState]) -> tuple[ClusterState, list[ClusterState]]:
    """Pick the cluster to keep of several active ones, and return it with the duplicates.

    The oldest ready cluster is the one users most likely work on. Without a ready one, the
    newest is the latest attempt, such as the replacement of a stuck cluster.
    """
    ready = sorted((c for c in clusters if c.state in READY_STATES),
                   key=lambda c: (c.created_at, c.id))
    keeper = ready[0] if ready else max(clusters, key=lambda c: (c.created_at, c.id))
    return keeper, [cluster for cluster in clusters if cluster.id != keeper.id]


def _plan_stuck(account: Account, index: int, spec: ClusterSpec, stuck: ClusterState,
                observed: Observed, limits: Limits, result: PlanResult) -> bool:
    """Plan the replacement of a cluster stuck in STARTING, or return False to keep it.

    "Once" is read from the stuck cluster itself. A replacement carries the tag
    rpa:replaces with the id of the cluster it replaced, so a stuck cluster with that tag is
    already the second try: it is reported for an operator and not replaced again. Only
    DescribeCluster returns tags, and only stuck clusters are described. The audit table
    could hold the same fact, but the tag stays with the cluster, where an operator looks,
    and does not depend on the audit table being kept.
    """
    field_name = f"mcm.clusters[{index}]"
    if stuck.id in observed.describe_errors:
        result.problems.append(Problem(account.name, field_name,
                                       observed.describe_errors[stuck.id]))
        return False
    described = observed.described.get(stuck.id, stuck)
    minutes = int(limits.starting_limit.total_seconds() // 60)
    replaced = described.tag(REPLACES_TAG)
    if replaced is not None:
        result.problems.append(Problem(
            account.name, field_name,
            f"cluster {stuck.id} is still STARTING after more than {minutes} min and already "
            f"replaced {replaced}; it is not replaced again, check it in the EMR console"))
        return False
    result.actions.append(_terminate(
        account, Kind.CLUSTER_TERMINATE, spec.name, stuck,
        f"stuck in STARTING for more than {minutes} min; replaced"))
    result.actions.append(_create(account, index, spec, observed, limits, replaces=stuck.id))
    return True


def _create(account: Account, index: int, spec: ClusterSpec, observed: Observed,
            limits: Limits, *, replaces: str | None = None) -> Action:
    name = cluster_name(account.name, spec.name)
    losses = sorted((c for c in observed.recent_errors if c.name == name and is_spot_loss(c)),
                    key=lambda c: (c.created_at, c.id))
    market = spec.market
    detail = (f"{spec.release_label}, master {spec.master_instance_type}, core "
              f"{spec.core_count} x {spec.core_instance_type}")
    if spec.market == "SPOT" and len(losses) >= limits.spot_fallback_after:
        market = "ON_DEMAND"
        detail += (f", ON_DEMAND instead of SPOT after {len(losses)} Spot losses in "
                   f"{SPOT_LOSS_WINDOW.total_seconds() / 3600:.0f} h")
    else:
        detail += f", {market}"
        if spec.market == "SPOT" and losses:
            detail += f", again after Spot loss of {losses[-1].id}"
    if replaces is not None:
        detail += f", replaces {replaces}"
    return Action(account.name, Kind.CLUSTER_CREATE, spec.name, detail, {
        "site": _mcm(account).site, "index": index, "spec": spec, "name": name,
        "market": market, "replaces": replaces})


def _terminate(account: Account, kind: Kind, spec_name: str, cluster: ClusterState,
               reason: str) -> Action:
    return Action(account.name, kind, f"{spec_name}/{cluster.id}",
                  f"{cluster.state}, {reason}",
                  {"site": _mcm(account).site, "cluster_id": cluster.id})


def _plan_registration(account: Account, spec_name: str, cluster: ClusterState,
                       observed: Observed, result: PlanResult) -> None:
    site = _mcm(account).site
    registered = observed.registered.get(site)
    if registered is None:
        return
    target = f"{spec_name}/{cluster.id}"
    params = {"site": site, "cluster_id": cluster.id, "name": cluster.name}
    found = registered.get(cluster.id)
    if found is None:
        result.actions.append(Action(account.name, Kind.CLUSTER_REGISTER, target,
                                     "not registered in MCM", params))
    if found is None or found.account != account.name:
        before = found.account if found is not None and found.account else "nobody"
        result.actions.append(Action(account.name, Kind.CLUSTER_ASSIGN, target,
                                     f"{before} -> {account.name}", params))


def _plan_unassign_ended(account: Account, registered: Sequence[McmCluster],
                         active_ids: frozenset[str], result: PlanResult) -> None:
    """Unassign the account's clusters in MCM whose EMR cluster is no longer active.

    `registered` lists the account's own registrations, by cluster id.
    """
    site = _mcm(account).site
    for found in registered:
        parsed = parse_cluster_name(found.name)
        if parsed is not None and found.cluster_id not in active_ids:
            result.actions.append(Action(
                account.name, Kind.CLUSTER_UNASSIGN, f"{parsed[1]}/{found.cluster_id}",
                "cluster no longer active", {"site": site, "cluster_id": found.cluster_id}))


def cluster_schedule_for(account: str, record: McmRecord) -> ClusterSchedule | None:
    """Return the core time MCM should show, or None for a record that lists no cluster."""
    if not record.clusters:
        return None
    schedule = record.schedule
    days = schedule.days if isinstance(schedule.days, str) else ",".join(schedule.days)
    return ClusterSchedule(account, days, schedule.start, schedule.end, schedule.timezone,
                           schedule.holidays,
                           tuple(day.isoformat() for day in sorted(schedule.exclude_dates)))


def _plan_mcm_schedule(account: Account, current: ClusterSchedule | None,
                       result: PlanResult) -> None:
    record = _mcm(account)
    wanted = cluster_schedule_for(account.name, record)
    if wanted is not None and wanted != current:
        before = current.describe() if current else "none"
        result.actions.append(Action(account.name, Kind.MCM_SCHEDULE_PUT, account.name,
                                     f"{before} -> {wanted.describe()}",
                                     {"site": record.site, "schedule": wanted}))
    elif wanted is None and current is not None:
        result.actions.append(Action(account.name, Kind.MCM_SCHEDULE_DELETE, account.name,
                                     f"{current.describe()} -> none, the record lists no "
                                     "cluster", {"site": record.site}))


def _plan_schedule_row(account: Account, current: ScheduleRow | None, now: dt.datetime,
                       result: PlanResult) -> None:
    wanted = schedule_row_for(JOB, account.name, _mcm(account).schedule, now)
    if wanted == current:
        return
    before = current.describe() if current else "none"
    detail = f"{before} -> {wanted.describe()}"
    if current is not None and before == wanted.describe():
        # Only the next switches moved on, which is what changes after every switch.
        detail = f"next on {_instant(wanted.next_on_at)}, next off {_instant(wanted.next_off_at)}"
    result.actions.append(Action(account.name, Kind.SCHEDULE_ROW_UPSERT, account.name, detail,
                                 {"row": wanted}))


def _instant(at: dt.datetime | None) -> str:
    return "none" if at is None else f"{at.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}"


# Apply: one action at a time. Errors propagate as rpa.clients.errors.ClientError.

def apply_action(run: Run, action: Action) -> None:
    params = action.params
    match action.kind:
        case Kind.CLUSTER_CREATE:
            _create_cluster(run, action)
        case Kind.CLUSTER_TERMINATE | Kind.CLUSTER_TERMINATE_OFF_CORE:
            _terminate_cluster(run, action)
        case Kind.CLUSTER_REGISTER:
            run.env.mcm(params["site"]).register_cluster(
                cluster_id=params["cluster_id"], name=params["name"],
                region=run.settings.aws_region)
        case Kind.CLUSTER_ASSIGN:
            run.env.mcm(params["site"]).assign_cluster(params["cluster_id"], action.account)
        case Kind.CLUSTER_UNASSIGN:
            run.env.mcm(params["site"]).unassign_cluster(params["cluster_id"])
        case Kind.MCM_SCHEDULE_PUT:
            run.env.mcm(params["site"]).put_schedule(params["schedule"])
        case Kind.MCM_SCHEDULE_DELETE:
            run.env.mcm(params["site"]).delete_schedule(action.account)
        case Kind.SCHEDULE_ROW_UPSERT:
            run.env.database().upsert_schedule_row(params["row"], now=run.now)
        case _:
            raise ValueError(f"the mcm job cannot apply {action.kind.value}")


def _create_cluster(run: Run, action: Action) -> None:
    """Start the cluster, then register it in MCM and assign it, since only now is its id known.

    When MCM fails after EMR succeeded, the action fails and the next run plans the
    registration of the running cluster.
    """
    params = action.params
    spec: ClusterSpec = params["spec"]
    request = ClusterRequest(
        name=params["name"], release_label=spec.release_label,
        applications=tuple(spec.applications),
        master_instance_type=spec.master_instance_type,
        core_instance_type=spec.core_instance_type, core_count=spec.core_count,
        market=params["market"], tags=cluster_tags(action.account, spec.name, params["replaces"]))
    try:
        cluster_id = run.env.emr().run_job_flow(request)
    except errors.InvalidRequest as err:
        message = rejection_message(action.account, params["index"], spec, str(err))
        raise errors.InvalidRequest(message, service=err.service, status=err.status) from err
    log.info("started cluster %s as %s", cluster_id, request.name,
             extra={"account": action.account})
    client = run.env.mcm(params["site"])
    try:
        client.register_cluster(cluster_id=cluster_id, name=request.name,
                                region=run.settings.aws_region)
        client.assign_cluster(cluster_id, action.account)
    except errors.ClientError as err:
        raise type(err)(f"cluster {cluster_id} started, but its MCM registration failed "
                        f"(the next run retries it): {err}", service=err.service,
                        status=err.status) from err


def cluster_tags(account: str, spec: str, replaces: str | None) -> tuple[tuple[str, str], ...]:
    tags = [(MANAGED_BY_TAG, MANAGED_BY_VALUE), (ACCOUNT_TAG, account), (CLUSTER_TAG, spec)]
    if replaces is not None:
        tags.append((REPLACES_TAG, replaces))
    return tuple(tags)


def rejection_message(account: str, index: int, spec: ClusterSpec, reason: str) -> str:
    """Name the record fields whose values EMR's rejection mentions, with those values.

    EMR's message about an instance type also names the release label, so the label counts
    only when no instance type is named.
    """
    prefix = f"mcm.clusters[{index}]"
    named = [f"{prefix}.{name} = {value}" for name, value in (
        ("master_instance_type", spec.master_instance_type),
        ("core_instance_type", spec.core_instance_type)) if value in reason]
    if not named and spec.release_label in reason:
        named = [f"{prefix}.release_label = {spec.release_label}"]
    fields = ", ".join(named) or prefix
    return f"{account}: EMR rejected cluster {spec.name!r} ({fields}): {reason}"


def _terminate_cluster(run: Run, action: Action) -> None:
    """Terminate a cluster that DescribeCluster shows as this job's for the account.

    Then unassign it in MCM. A cluster without the tags is left running and the action
    fails, so an operator sees it.
    """
    cluster_id = action.params["cluster_id"]
    emr = run.env.emr()
    current = emr.describe_cluster(cluster_id)
    if (current.tag(MANAGED_BY_TAG) != MANAGED_BY_VALUE
            or current.tag(ACCOUNT_TAG) != action.account):
        raise errors.Conflict(
            f"cluster {cluster_id} ({current.name}) lacks the tags {MANAGED_BY_TAG}="
            f"{MANAGED_BY_VALUE} and {ACCOUNT_TAG}={action.account}; left running",
            service=emr.service)
    if current.state in ACTIVE_CLUSTER_STATES:
        emr.terminate_cluster(cluster_id)
    else:
        log.info("cluster %s is already %s", cluster_id, current.state,
                 extra={"account": action.account})
    try:
        run.env.mcm(action.params["site"]).unassign_cluster(cluster_id)
    except errors.ClientError as err:
        raise type(err)(f"cluster {cluster_id} is terminating, but its MCM unassignment "
                        f"failed (the next run retries it): {err}", service=err.service,
                        status=err.status) from err


def _mcm(account: Account) -> McmRecord:
    assert account.mcm is not None
    return account.mcm


def main(argv: Sequence[str] | None = None) -> int:
    from rpa.cli import run_job_command

    return run_job_command(McmJob(), argv)


if __name__ == "__main__":
    from rpa.cli import run_program

    raise SystemExit(run_program(main))
