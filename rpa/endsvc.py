"""The end-of-service job: returns expired accounts to the pool, daily at 09:00 Asia/Seoul.

An account whose end_date (plus `--grace-days`) is before today in Asia/Seoul, and whose
period is not released yet, loses everything its trial left behind, in this order:

1. Modeler: each project's workspaces, deployments, AutoML and AutoDL experiments, drift
   monitors, deployment storage and analysis images, then the project; its schedule row.
2. Pipeline: the account's workflows, datasets and models, its storage registration, then
   its pipeline projects.
3. MCM: the cluster schedule (in MCM and its row), the account's managed EMR clusters
   (terminated and unassigned) and any other cluster still assigned to it.
4. Auto Scaling: this tool's scheduled actions on the account's group; the group to 0.
5. S3: every object version, delete marker and unfinished upload in its bucket.
6. IAM access keys and the trial user group membership. The bucket and the IAM identity
   stay for the next user of the pooled account.
7. The password: changed in CloudZ and stored in the record (see rpa.passwords).
8. `released_at` in the record, only when every step before it was done.

Every step is planned from what exists, so a rerun after a crash or a failure finds what is
left and deletes only that. Nothing is planned for a resource this tool cannot attribute to
the account: projects by owner, pipeline items by account, the bucket by its tags,
clusters by name and (before termination) tags, scheduled actions by their name prefix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rpa import base_resources
from rpa import mcm as mcm_job
from rpa.clients import errors
from rpa.clients.aws import (
    ACCOUNT_TAG,
    ACTIVE_CLUSTER_STATES,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    SCHEDULED_ACTION_PREFIX,
    ClusterState,
    GroupState,
    ScheduledAction,
)
from rpa.clients.mcm import ClusterSchedule, McmCluster
from rpa.clients.modeler import PROJECT_ITEM_KINDS, ItemKind, RemoteItem, RemoteProject
from rpa.clients.pipeline import PipelineItem, StorageRegistration
from rpa.inventory import Account, Inventory, today_in_service_zone
from rpa.job import PlanResult, Run
from rpa.passwords import PasswordPolicy, RotationError, generate_password, rotate_password
from rpa.plan import Action, Kind, Problem

log = logging.getLogger(__name__)

JOB = "endsvc"
RELEASE_KINDS = frozenset({
    Kind.PROJECT_ITEM_DELETE, Kind.PROJECT_DELETE, Kind.SCHEDULE_ROW_DELETE,
    Kind.PIPELINE_ITEM_DELETE, Kind.PIPELINE_STORAGE_DELETE, Kind.BUCKET_EMPTY,
    Kind.IAM_DELETE_ACCESS_KEY, Kind.GROUP_REMOVE, Kind.PASSWORD_ROTATE, Kind.ACCOUNT_RELEASE,
})
MCM_KINDS = frozenset({Kind.CLUSTER_TERMINATE, Kind.CLUSTER_UNASSIGN, Kind.MCM_SCHEDULE_DELETE})


@dataclass
class Observed:
    """Resources the expired accounts still have; `errors` maps an unread area to the cause."""

    projects: dict[str, list[RemoteProject]] = field(default_factory=dict)
    items: dict[str, list[tuple[ItemKind, RemoteItem]]] = field(default_factory=dict)
    pipeline: list[PipelineItem] = field(default_factory=list)
    storages: dict[str, StorageRegistration] = field(default_factory=dict)
    clusters: list[ClusterState] = field(default_factory=list)
    registered: dict[str, list[McmCluster]] = field(default_factory=dict)
    cluster_schedules: dict[str, dict[str, ClusterSchedule]] = field(default_factory=dict)
    groups: dict[str, GroupState] = field(default_factory=dict)
    scheduled: dict[str, list[ScheduledAction]] = field(default_factory=dict)
    buckets: dict[str, tuple[dict[str, str], tuple[int, int, int]]] = field(default_factory=dict)
    access_keys: dict[str, list[str]] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    schedule_rows: dict[str, set[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def expired_accounts(inventory: Inventory, now: dt.datetime, grace_days: int) -> list[Account]:
    """Accounts whose end_date plus the grace days is before today, not yet released."""
    today = today_in_service_zone(now)
    found = []
    for account in inventory.accounts.values():
        end = account.password.end_date
        if end is None or account.password.is_released():
            continue
        if end + dt.timedelta(days=grace_days) < today:
            found.append(account)
    return sorted(found, key=lambda account: account.name)


class EndsvcJob:
    name = JOB

    def plan(self, run: Run, inventory: Inventory) -> PlanResult:
        accounts = expired_accounts(inventory, run.now, run.settings.grace_days)
        if not accounts:
            return PlanResult()
        return plan_release(accounts, observe(run, accounts), run)

    def apply(self, run: Run, action: Action) -> None:
        apply_action(run, action)

    @staticmethod
    def add_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--grace-days", type=int, default=None, metavar="N",
                            help="release accounts only N days after their end date "
                                 "(default: RPA_GRACE_DAYS, 0)")

    @staticmethod
    def count_deletions(destructive: Sequence[Action]) -> int:
        """--max-deletes counts released accounts: one release deletes many resources."""
        return len({action.account for action in destructive})


# Observe: one listing per resource type and site where the API has one.

def observe(run: Run, accounts: Sequence[Account]) -> Observed:
    observed = Observed()
    names = {account.name for account in accounts}
    readers: list[tuple[str, Callable[[], None]]] = [
        ("modeler", lambda: _observe_modeler(run, accounts, observed)),
        ("pipeline", lambda: _observe_pipeline(run, names, observed)),
        ("mcm", lambda: _observe_mcm(run, accounts, names, observed)),
        ("autoscaling", lambda: _observe_groups(run, accounts, observed)),
        ("s3", lambda: _observe_buckets(run, accounts, observed)),
        ("iam", lambda: _observe_keys(run, accounts, observed)),
        ("portal", lambda: observed.members.update(
            run.env.portal().list_members(run.settings.account_group))),
        ("database", lambda: _observe_rows(run, observed)),
    ]
    for area, read in readers:
        try:
            read()
        except errors.ClientError as err:
            log.error("cannot read %s: %s", area, err)
            observed.errors[area] = str(err)
    return observed


def _observe_modeler(run: Run, accounts: Sequence[Account], observed: Observed) -> None:
    sites = sorted({account.modeler.site for account in accounts if account.modeler})
    for site in sites:
        client = run.env.modeler(site)
        observed.projects[site] = client.list_projects()
        owned = {p.id for p in observed.projects[site]
                 if p.owner in {a.name for a in accounts}}
        for kind in PROJECT_ITEM_KINDS:
            observed.items.setdefault(site, []).extend(
                (kind, item) for item in client.list_items(kind) if item.project_id in owned)


def _observe_pipeline(run: Run, names: set[str], observed: Observed) -> None:
    pipeline = run.env.pipeline()
    for kind in ("workflows", "datasets", "models", "pipeline-projects"):
        observed.pipeline += [i for i in pipeline.list_items(kind) if i.account in names]
    observed.storages = {s.account: s for s in pipeline.list_storages() if s.account in names}


def _observe_mcm(run: Run, accounts: Sequence[Account], names: set[str],
                 observed: Observed) -> None:
    observed.clusters = [
        cluster for cluster in run.env.emr().list_clusters(ACTIVE_CLUSTER_STATES)
        if (parsed := mcm_job.parse_cluster_name(cluster.name)) and parsed[0] in names]
    for site in sorted({account.mcm.site for account in accounts if account.mcm}):
        client = run.env.mcm(site)
        observed.registered[site] = [c for c in client.list_clusters() if c.account in names]
        observed.cluster_schedules[site] = {s.account: s for s in client.list_schedules()
                                            if s.account in names}


def _observe_groups(run: Run, accounts: Sequence[Account], observed: Observed) -> None:
    names = [group.name for account in accounts
             if account.modeler and (group := account.modeler.autoscaling_group)]
    if names:
        autoscaling = run.env.autoscaling()
        observed.groups = autoscaling.describe_groups(names)
        observed.scheduled = autoscaling.describe_scheduled_actions(names)


def _observe_buckets(run: Run, accounts: Sequence[Account], observed: Observed) -> None:
    s3 = run.env.s3()
    existing = s3.list_bucket_names()
    for account in accounts:
        if account.modeler is None:
            continue
        bucket = base_resources.names_for(account, run.settings).bucket
        if bucket in existing:
            observed.buckets[bucket] = (s3.read_config(bucket).tags, s3.count_contents(bucket))


def _observe_keys(run: Run, accounts: Sequence[Account], observed: Observed) -> None:
    iam = run.env.iam()
    managed = iam.list_managed()
    for account in accounts:
        if account.modeler is None:
            continue
        identity = base_resources.names_for(account, run.settings).identity
        if identity in managed:
            observed.access_keys[identity] = iam.list_access_keys(identity)


def _observe_rows(run: Run, observed: Observed) -> None:
    database = run.env.database()
    for job in ("modeler", "mcm"):
        observed.schedule_rows[job] = set(database.read_schedule_rows(job))


# Plan: pure, in the release order.

def plan_release(accounts: Sequence[Account], observed: Observed, run: Run) -> PlanResult:
    result = PlanResult()
    for account in accounts:
        missing = [area for area in observed.errors]
        for area in missing:
            result.problems.append(Problem(account.name, area, observed.errors[area]))
        steps: list[Action] = []
        steps += _plan_modeler(account, observed)
        steps += _plan_pipeline(account, observed)
        steps += _plan_mcm(account, observed)
        steps += _plan_group_size(account, observed)
        steps += _plan_bucket_and_keys(account, observed, run)
        steps += _plan_password(account, run.now)
        counts = Counter(action.kind.value for action in steps)
        summary = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
        steps.append(Action(account.name, Kind.ACCOUNT_RELEASE, account.name,
                            f"releases: {summary or 'nothing left'}",
                            needs_prior_success=True))
        if missing:
            # A partial view never counts as "nothing left": the account is not marked.
            steps[-1] = Action(account.name, Kind.ACCOUNT_RELEASE, account.name,
                               steps[-1].detail, blocked=f"not read: {', '.join(missing)}")
        result.actions += steps
    return result


def _plan_modeler(account: Account, observed: Observed) -> list[Action]:
    if account.modeler is None:
        return _row_delete(account, observed, "modeler")
    site = account.modeler.site
    steps = []
    owned = [p for p in observed.projects.get(site, []) if p.owner == account.name]
    for project in owned:
        for kind, item in observed.items.get(site, []):
            if item.project_id == project.id:
                steps.append(Action(account.name, Kind.PROJECT_ITEM_DELETE,
                                    f"{project.name}/{kind}/{item.name}", item.status,
                                    {"site": site, "item_kind": kind, "item_id": item.id}))
        steps.append(Action(account.name, Kind.PROJECT_DELETE, project.name, "released",
                            {"site": site, "project_id": project.id}))
    return steps + _row_delete(account, observed, "modeler")


def _row_delete(account: Account, observed: Observed, job: str) -> list[Action]:
    if account.name not in observed.schedule_rows.get(job, set()):
        return []
    return [Action(account.name, Kind.SCHEDULE_ROW_DELETE, f"{job}/{account.name}",
                   "released", {"job": job})]


def _plan_pipeline(account: Account, observed: Observed) -> list[Action]:
    steps = []
    mine = [item for item in observed.pipeline if item.account == account.name]
    for kind in ("workflows", "datasets", "models"):
        for item in (i for i in mine if i.kind == kind):
            steps.append(Action(account.name, Kind.PIPELINE_ITEM_DELETE, f"{kind}/{item.name}",
                                "released", {"item_kind": kind, "item_id": item.id}))
    storage = observed.storages.get(account.name)
    if storage is not None:
        steps.append(Action(account.name, Kind.PIPELINE_STORAGE_DELETE, storage.bucket,
                            "released", {"storage_id": storage.id}))
    for item in (i for i in mine if i.kind == "pipeline-projects"):
        steps.append(Action(account.name, Kind.PIPELINE_ITEM_DELETE,
                            f"pipeline-projects/{item.name}",
                            "released", {"item_kind": "pipeline-projects",
                                         "item_id": item.id}))
    return steps


def _plan_mcm(account: Account, observed: Observed) -> list[Action]:
    steps: list[Action] = []
    site = account.mcm.site if account.mcm else None
    if site is not None and account.name in observed.cluster_schedules.get(site, {}):
        steps.append(Action(account.name, Kind.MCM_SCHEDULE_DELETE, account.name,
                            "released", {"site": site}))
    steps += _row_delete(account, observed, "mcm")
    terminated = set()
    for cluster in observed.clusters:
        parsed = mcm_job.parse_cluster_name(cluster.name)
        if parsed and parsed[0] == account.name and site is not None:
            terminated.add(cluster.id)
            steps.append(Action(account.name, Kind.CLUSTER_TERMINATE,
                                f"{parsed[1]}/{cluster.id}", f"{cluster.state}, released",
                                {"site": site, "cluster_id": cluster.id}))
    for registered in observed.registered.get(site or "", []):
        if registered.account == account.name and registered.cluster_id not in terminated:
            steps.append(Action(account.name, Kind.CLUSTER_UNASSIGN, registered.cluster_id,
                                "released", {"site": site, "cluster_id": registered.cluster_id}))
    return steps


def _plan_group_size(account: Account, observed: Observed) -> list[Action]:
    group = account.modeler.autoscaling_group if account.modeler else None
    if group is None:
        return []
    steps = []
    prefix = f"{SCHEDULED_ACTION_PREFIX}{account.name}-"
    for action in observed.scheduled.get(group.name, []):
        if action.name.startswith(prefix):
            steps.append(Action(account.name, Kind.ASG_UNSCHEDULE,
                                f"{group.name}/{action.name}", "released",
                                {"group": group.name, "name": action.name}))
    state = observed.groups.get(group.name)
    if state is not None and (state.desired, state.min) != (0, 0):
        steps.append(Action(account.name, Kind.ASG_SET_DESIRED, group.name,
                            f"desired {state.desired} -> 0, min {state.min} -> 0",
                            {"desired": 0, "min": 0, "max": state.max}))
    return steps


def _plan_bucket_and_keys(account: Account, observed: Observed, run: Run) -> list[Action]:
    if account.modeler is None:
        return _plan_group_removal(account, observed, run)
    names = base_resources.names_for(account, run.settings)
    steps = []
    found = observed.buckets.get(names.bucket)
    if found is not None:
        tags, (versions, markers, uploads) = found
        ours = tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE and tags.get(ACCOUNT_TAG) == \
            account.name
        if ours and versions + markers + uploads:
            steps.append(Action(account.name, Kind.BUCKET_EMPTY, names.bucket,
                                f"{versions} object versions, {markers} delete markers, "
                                f"{uploads} unfinished uploads", {}))
    for key_id in observed.access_keys.get(names.identity, []):
        steps.append(Action(account.name, Kind.IAM_DELETE_ACCESS_KEY,
                            f"{names.identity}/{key_id}", "released",
                            {"name": names.identity, "key_id": key_id}))
    return steps + _plan_group_removal(account, observed, run)


def _plan_group_removal(account: Account, observed: Observed, run: Run) -> list[Action]:
    if account.name not in observed.members:
        return []
    group = run.settings.account_group
    return [Action(account.name, Kind.GROUP_REMOVE, group, "released", {"group": group})]


def _plan_password(account: Account, now: dt.datetime) -> list[Action]:
    rotated = account.password.rotated_at
    end = account.password.end_date
    if rotated is not None and end is not None and \
            today_in_service_zone(rotated) > end:
        return []
    pending = account.password.pending_password is not None
    detail = "finish the interrupted rotation" if pending else "new password"
    return [Action(account.name, Kind.PASSWORD_ROTATE, account.password.username, detail)]


# Apply.

def apply_action(run: Run, action: Action) -> None:
    params = action.params
    match action.kind:
        case Kind.PROJECT_ITEM_DELETE:
            _ignore_gone(action, lambda: run.env.modeler(params["site"]).delete_item(
                params["item_kind"], params["item_id"]))
        case Kind.PROJECT_DELETE:
            _ignore_gone(action, lambda: run.env.modeler(params["site"]).delete_project(
                params["project_id"]))
        case Kind.SCHEDULE_ROW_DELETE:
            run.env.database().delete_schedule_row(params["job"], action.account)
        case Kind.PIPELINE_ITEM_DELETE:
            _ignore_gone(action, lambda: run.env.pipeline().delete_item(params["item_kind"],
                                                                params["item_id"]))
        case Kind.PIPELINE_STORAGE_DELETE:
            _ignore_gone(action, lambda: run.env.pipeline().delete_storage(params["storage_id"]))
        case Kind.BUCKET_EMPTY:
            deleted = run.env.s3().empty_bucket(action.target)
            log.info("emptied bucket %s: %d entries deleted", action.target, deleted,
                     extra={"account": action.account})
        case Kind.IAM_DELETE_ACCESS_KEY:
            run.env.iam().delete_access_key(params["name"], params["key_id"])
        case Kind.GROUP_REMOVE:
            _ignore_gone(action, lambda: run.env.portal().remove_member(params["group"],
                                                                action.account))
        case Kind.PASSWORD_ROTATE:
            _rotate(run, action.account)
        case Kind.ACCOUNT_RELEASE:
            released = run.now.astimezone(dt.UTC).isoformat()
            run.env.record_store().update(f"password/{action.account}",
                                          lambda data: {**data, "released_at": released})
        case kind if kind in MCM_KINDS:
            mcm_job.apply_action(run, action)
        case Kind.ASG_UNSCHEDULE | Kind.ASG_SET_DESIRED:
            from rpa.modeler import apply_action as apply_modeler

            apply_modeler(run, action)
        case _:
            raise ValueError(f"the endsvc job cannot apply {action.kind.value}")


def _rotate(run: Run, account: str) -> None:
    policy = PasswordPolicy.from_settings(run.settings)
    try:
        rotation = rotate_password(run.env.record_store(), run.env.cloudz(), account,
                                   now=run.now, generate=lambda: generate_password(policy))
    except RotationError as err:
        raise errors.Conflict(str(err), service="cloudz") from err
    log.info("password rotated%s", " (finished an interrupted rotation)"
             if rotation.resumed else "", extra={"account": account})


def _ignore_gone(action: Action, call: Callable[[], Any]) -> None:
    """Run a delete; a resource that is already gone is what the release wants."""
    try:
        call()
    except errors.NotFound:
        log.info("%s %s was already gone", action.kind.value, action.target,
                 extra={"account": action.account})


def main(argv: Sequence[str] | None = None) -> int:
    from rpa.cli import run_job_command

    return run_job_command(EndsvcJob(), argv)


if __name__ == "__main__":
    from rpa.cli import run_program

    raise SystemExit(run_program(main))
