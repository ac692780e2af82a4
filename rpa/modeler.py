"""The modeler job: Modeler projects and worker nodes of every account in its usage period.

Hourly, for each account in its period, the job creates missing projects, updates their
resources and deletes projects the record does not list. In core time it scales the
worker-node Auto Scaling group to `core_desired`. Outside core time it stops running
workspaces and deployments and scales the group to `off_desired`. It keeps the next
scheduled switches registered on the group and the account's schedule row in the platform
database in step with the record. Accounts before or after their period are left alone
(the end-of-service job releases expired ones).

Run as `python -m rpa.modeler` or `rpa modeler`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, cast

from rpa import base_resources
from rpa.clients import errors
from rpa.clients.aws import SCHEDULED_ACTION_PREFIX, GroupState, ScheduledAction
from rpa.clients.db import ScheduleRow
from rpa.clients.modeler import ItemKind, RemoteItem, RemoteProject
from rpa.inventory import Account, GroupSize, Inventory, ModelerRecord, today_in_service_zone
from rpa.job import PlanResult, Run
from rpa.parallel import read_all
from rpa.plan import Action, Kind, Problem
from rpa.schedule import Schedule
from rpa.schedule_rows import schedule_row_for

log = logging.getLogger(__name__)

JOB = "modeler"
# Scheduled actions are registered for switches inside this horizon. A longer one would only
# pile up actions that the next hourly run can register as well.
SCHEDULE_HORIZON = dt.timedelta(days=14)
ITEM_KINDS: tuple[ItemKind, ...] = ("workspaces", "deployments")


@dataclass(frozen=True)
class SiteState:
    """Contents of one Modeler site: all projects and the running workspaces and deployments."""

    projects: list[RemoteProject]
    running: dict[ItemKind, list[RemoteItem]] = field(default_factory=dict)

    # Indexes made once per site, so that planning each account does not scan every project
    # and item of the site, which would grow with the square of the number of accounts.

    @functools.cached_property
    def by_name(self) -> dict[str, RemoteProject]:
        return {project.name: project for project in self.projects}

    @functools.cached_property
    def by_owner(self) -> dict[str, list[RemoteProject]]:
        owned: dict[str, list[RemoteProject]] = {}
        for project in self.projects:
            owned.setdefault(project.owner, []).append(project)
        return owned

    @functools.cached_property
    def running_by_owner(self) -> dict[tuple[ItemKind, str], list[RemoteItem]]:
        """Return the running items of each kind and project owner, in listing order."""
        owners = {project.id: project.owner for project in self.projects}
        items: dict[tuple[ItemKind, str], list[RemoteItem]] = {}
        for kind, listed in self.running.items():
            for item in listed:
                owner = owners.get(item.project_id)
                if owner is not None:
                    items.setdefault((kind, owner), []).append(item)
        return items


@dataclass
class Observed:
    """The observed state of every system the plan compares with."""

    sites: dict[str, SiteState] = field(default_factory=dict)
    site_errors: dict[str, str] = field(default_factory=dict)
    groups: dict[str, GroupState] = field(default_factory=dict)
    scheduled: dict[str, list[ScheduledAction]] = field(default_factory=dict)
    aws_error: str | None = None
    schedule_rows: dict[str, ScheduleRow] = field(default_factory=dict)


class ModelerJob:
    name = JOB

    def plan(self, run: Run, inventory: Inventory) -> PlanResult:
        today = today_in_service_zone(run.now)
        accounts = [account for account in inventory.accounts.values()
                    if account.modeler is not None and account.is_in_period(today)]
        observed, base_observed = observe_all(run, accounts)
        result = plan_changes(accounts, observed, now=run.now,
                              scheduled_action_count=run.settings.scheduled_action_count)
        if base_observed is not None:
            base = base_resources.plan_base(accounts, base_observed, run.settings)
            # Stable sort: each account's actions stay together, in the order planned.
            result.actions = sorted(result.actions + base.actions, key=lambda a: a.account)
            result.problems += base.problems
        return result

    def apply(self, run: Run, action: Action) -> None:
        if action.kind in base_resources.BASE_KINDS:
            base_resources.apply_base(run, action)
        else:
            apply_action(run, action)

    def warm_up(self, run: Run) -> None:
        """Build the AWS clients of the observe step before the records are read."""
        run.env.autoscaling()
        if run.settings.base_resources:
            run.env.s3()
            run.env.iam()


# Observe: one listing per resource type and site, never one call per account.

def observe_all(run: Run, accounts: Sequence[Account]
                ) -> tuple[Observed, base_resources.BaseObserved | None]:
    """Observe the Modeler sites and groups and, when they are kept, the base resources.

    The two read different services, so above RPA_CONCURRENCY 1 they are read at the same
    time, and the listings of the first overlap the per-resource reads of the second.
    """
    if not run.settings.base_resources:
        return observe(run, accounts), None
    if run.settings.concurrency == 1:
        return observe(run, accounts), base_resources.observe(run, accounts)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rpa-observe") as pool:
        base = pool.submit(base_resources.observe, run, accounts)
        observed = observe(run, accounts)
        return observed, base.result()


def observe(run: Run, accounts: Sequence[Account]) -> Observed:
    """Read every Modeler site, the worker-node groups and the schedule rows.

    Each is a listing, one call per page whatever the number of accounts. They do not depend
    on each other, so up to RPA_CONCURRENCY of them are read at the same time.
    """
    observed = Observed()
    by_site: dict[str, list[Account]] = {}
    for account in accounts:
        by_site.setdefault(_modeler(account).site, []).append(account)
    listings = [(site, kind) for site, members in sorted(by_site.items())
                for kind in _site_listings(run, members)]
    reads: list[Callable[[], object]] = [functools.partial(_list_site, run, site, kind)
                                         for site, kind in listings]
    reads += [functools.partial(_observe_groups, run, accounts, observed),
              functools.partial(_observe_schedule_rows, run, observed)]
    results = read_all(reads, workers=run.settings.concurrency)
    _collect_sites(listings, results[:len(listings)], observed)
    return observed


# A listing of a site: its projects, or its running items of one kind.
SiteListing = Literal["projects"] | ItemKind


def _site_listings(run: Run, members: Sequence[Account]) -> list[SiteListing]:
    # Running items are needed only when an account of this site is outside core time.
    if any(not _modeler(account).schedule.is_active(run.now) for account in members):
        return ["projects", *ITEM_KINDS]
    return ["projects"]


def _list_site(run: Run, site: str, listing: SiteListing) -> object:
    client = run.env.modeler(site)
    if listing == "projects":
        return client.list_projects()
    return client.list_items(listing, status="RUNNING")


def _collect_sites(listings: Sequence[tuple[str, SiteListing]], results: Sequence[object],
                   observed: Observed) -> None:
    """Build each site's state from its listings; a site with a failed listing is an error."""
    projects: dict[str, list[RemoteProject]] = {}
    running: dict[str, dict[ItemKind, list[RemoteItem]]] = {}
    for (site, listing), result in zip(listings, results, strict=True):
        if isinstance(result, errors.ClientError):
            if site not in observed.site_errors:
                log.error("cannot read Modeler site %s: %s", site, result)
                observed.site_errors[site] = str(result)
        elif listing == "projects":
            projects[site] = cast(list[RemoteProject], result)
        else:
            running.setdefault(site, {})[listing] = cast(list[RemoteItem], result)
    for site, listed in projects.items():
        if site not in observed.site_errors:
            observed.sites[site] = SiteState(listed, running.get(site, {}))


def _observe_schedule_rows(run: Run, observed: Observed) -> None:
    observed.schedule_rows = run.env.database().read_schedule_rows(JOB)


def _observe_groups(run: Run, accounts: Sequence[Account], observed: Observed) -> None:
    names = [group.name for account in accounts
             if (group := _modeler(account).autoscaling_group) is not None]
    if not names:
        return
    try:
        autoscaling = run.env.autoscaling()
        observed.groups = autoscaling.describe_groups(names)
        observed.scheduled = autoscaling.describe_scheduled_actions(names)
    except errors.ClientError as err:
        log.error("cannot read Auto Scaling groups: %s", err)
        observed.aws_error = str(err)


# Plan: pure, from records, observed state and `now`.

def plan_changes(accounts: Iterable[Account], observed: Observed, *, now: dt.datetime,
                 scheduled_action_count: int = 2) -> PlanResult:
    """Return the actions and problems for the accounts in their usage period."""
    result = PlanResult()
    for account in sorted(accounts, key=lambda item: item.name):
        modeler = _modeler(account)
        site_error = observed.site_errors.get(modeler.site)
        if site_error is not None:
            result.problems.append(Problem(account.name, "modeler.site", site_error))
        else:
            site = observed.sites[modeler.site]
            _plan_projects(account, site, result)
            if not modeler.schedule.is_active(now):
                _plan_stops(account, site, result)
        if modeler.autoscaling_group is not None:
            _plan_group(account, modeler.autoscaling_group, observed, now,
                        scheduled_action_count, result)
        _plan_schedule_row(account, observed.schedule_rows.get(account.name), now, result)
    return result


def _plan_projects(account: Account, site: SiteState, result: PlanResult) -> None:
    modeler = _modeler(account)
    wanted = {project.name for project in modeler.projects}
    for index, project in enumerate(modeler.projects):
        found = site.by_name.get(project.name)
        params = {"site": modeler.site, "name": project.name, "resources": project.resources()}
        if found is None:
            result.actions.append(Action(account.name, Kind.PROJECT_CREATE, project.name,
                                         _resources_text(project.resources()), params))
        elif found.owner != account.name:
            result.problems.append(Problem(
                account.name, f"modeler.projects[{index}].name",
                f"project {project.name!r} already exists on {modeler.site} under owner "
                f"{found.owner!r}; left alone"))
        elif found.resources != project.resources():
            result.actions.append(Action(
                account.name, Kind.PROJECT_UPDATE, project.name,
                f"{_resources_text(found.resources)} -> {_resources_text(project.resources())}",
                {**params, "project_id": found.id}))
    for found in site.by_owner.get(account.name, []):
        if found.name not in wanted:
            result.actions.append(Action(account.name, Kind.PROJECT_DELETE, found.name,
                                         "not in the record",
                                         {"site": modeler.site, "project_id": found.id}))


def _plan_stops(account: Account, site: SiteState, result: PlanResult) -> None:
    modeler = _modeler(account)
    projects = {p.id: p.name for p in site.by_owner.get(account.name, [])}
    stops: tuple[tuple[ItemKind, Kind], ...] = (("workspaces", Kind.WORKSPACE_STOP),
                                                 ("deployments", Kind.DEPLOYMENT_STOP))
    for kind, action_kind in stops:
        for item in site.running_by_owner.get((kind, account.name), []):
            if item.status == "RUNNING":
                result.actions.append(Action(
                    account.name, action_kind, f"{projects[item.project_id]}/{item.name}",
                    "outside core time",
                    {"site": modeler.site, "item_kind": kind, "item_id": item.id}))


def _plan_group(account: Account, group: GroupSize, observed: Observed, now: dt.datetime,
                count: int, result: PlanResult) -> None:
    field_name = "modeler.autoscaling_group.name"
    if observed.aws_error is not None:
        result.problems.append(Problem(account.name, field_name, observed.aws_error))
        return
    state = observed.groups.get(group.name)
    if state is None:
        result.problems.append(Problem(account.name, field_name,
                                       f"Auto Scaling group {group.name!r} not found"))
        return
    schedule = _modeler(account).schedule
    wanted = group.core_desired if schedule.is_active(now) else group.off_desired
    if (state.desired, state.min, state.max) != (wanted, group.min, group.max):
        detail = f"desired {state.desired} -> {wanted}"
        if (state.min, state.max) != (group.min, group.max):
            detail += f", min/max {state.min}/{state.max} -> {group.min}/{group.max}"
        result.actions.append(Action(account.name, Kind.ASG_SET_DESIRED, group.name, detail,
                                     {"desired": wanted, "min": group.min, "max": group.max}))
    _plan_scheduled_actions(account, group, observed.scheduled.get(group.name, []), now, count,
                            result)


def next_switches(schedule: Schedule, now: dt.datetime, count: int
                  ) -> list[tuple[dt.datetime, bool]]:
    """Return the next `count` switches strictly after `now`, within the horizon."""
    later = schedule.transitions(now, now + SCHEDULE_HORIZON)
    return [(at, state) for at, state in later if at > now][:count]


def scheduled_actions_for(account: str, group: GroupSize, schedule: Schedule,
                          now: dt.datetime, count: int) -> list[ScheduledAction]:
    """Return the scheduled actions the group needs, named `rpa-<account>-<on|off>-<UTC time>`.

    AWS keys scheduled actions per group, but moto keys them by name alone, so the account
    in the name keeps the sandbox from mixing groups.
    """
    wanted = []
    for at, state in next_switches(schedule, now, count):
        switch = "on" if state else "off"
        name = f"{SCHEDULED_ACTION_PREFIX}{account}-{switch}-{at:%Y%m%dT%H%MZ}"
        desired = group.core_desired if state else group.off_desired
        wanted.append(ScheduledAction(group.name, name, at, desired))
    return wanted


def _plan_scheduled_actions(account: Account, group: GroupSize,
                            existing: Sequence[ScheduledAction], now: dt.datetime, count: int,
                            result: PlanResult) -> None:
    wanted = scheduled_actions_for(account.name, group, _modeler(account).schedule, now, count)
    current = {action.name: action for action in existing}
    for action in wanted:
        found = current.get(action.name)
        if found is None or (found.start_time, found.desired) != (action.start_time,
                                                                   action.desired):
            result.actions.append(Action(
                account.name, Kind.ASG_SCHEDULE, f"{group.name}/{action.name}",
                f"desired {action.desired} at {action.start_time:%Y-%m-%dT%H:%MZ}",
                {"action": action}))
    wanted_names = {action.name for action in wanted}
    for found in existing:
        if found.name not in wanted_names:
            result.actions.append(Action(account.name, Kind.ASG_UNSCHEDULE,
                                         f"{group.name}/{found.name}", "no longer scheduled",
                                         {"group": group.name, "name": found.name}))


def _plan_schedule_row(account: Account, current: ScheduleRow | None, now: dt.datetime,
                       result: PlanResult) -> None:
    wanted = schedule_row_for(JOB, account.name, _modeler(account).schedule, now)
    if wanted != current:
        before = current.describe() if current else "none"
        result.actions.append(Action(account.name, Kind.SCHEDULE_ROW_UPSERT, account.name,
                                     f"{before} -> {wanted.describe()}", {"row": wanted}))


# Apply: one action at a time; errors propagate as rpa.clients.errors.ClientError.

def apply_action(run: Run, action: Action) -> None:
    params = action.params
    match action.kind:
        case Kind.PROJECT_CREATE:
            run.env.modeler(params["site"]).create_project(
                name=params["name"], owner=action.account, resources=params["resources"])
        case Kind.PROJECT_UPDATE:
            run.env.modeler(params["site"]).update_project(params["project_id"],
                                                           params["resources"])
        case Kind.PROJECT_DELETE:
            _delete_project(run, params["site"], params["project_id"])
        case Kind.WORKSPACE_STOP | Kind.DEPLOYMENT_STOP:
            run.env.modeler(params["site"]).stop_item(params["item_kind"], params["item_id"])
        case Kind.ASG_SET_DESIRED:
            run.env.autoscaling().set_size(action.target, desired=params["desired"],
                                           min_size=params["min"], max_size=params["max"])
        case Kind.ASG_SCHEDULE:
            run.env.autoscaling().put_scheduled_action(params["action"])
        case Kind.ASG_UNSCHEDULE:
            run.env.autoscaling().delete_scheduled_action(params["group"], params["name"])
        case Kind.SCHEDULE_ROW_UPSERT:
            run.env.database().upsert_schedule_row(params["row"], now=run.now)
        case _:
            raise ValueError(f"the modeler job cannot apply {action.kind.value}")


def _delete_project(run: Run, site: str, project_id: str) -> None:
    """Delete a project's workspaces and deployments, then the project (the API needs it empty)."""
    client = run.env.modeler(site)
    for kind in ITEM_KINDS:
        for item in client.list_items(kind, project_id=project_id):
            client.delete_item(kind, item.id)
    try:
        client.delete_project(project_id)
    except errors.NotFound:
        log.info("project %s on %s was already gone", project_id, site)


def _modeler(account: Account) -> ModelerRecord:
    assert account.modeler is not None
    return account.modeler


def _resources_text(resources: dict[str, int]) -> str:
    return (f"cpu {resources['cpu']}, memory {resources['memory_gib']} GiB, "
            f"gpu {resources['gpu']}, storage {resources['storage_gib']} GiB")


def main(argv: Sequence[str] | None = None) -> int:
    from rpa.cli import run_job_command

    return run_job_command(ModelerJob(), argv)


if __name__ == "__main__":
    from rpa.cli import run_program

    raise SystemExit(run_program(main))
