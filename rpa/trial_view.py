"""Where the pooled accounts stand: `rpa trial list` and `rpa trial show ACCOUNT`.

Both only read. `list` shows every account's state (see rpa.pool) with its owner, purpose,
period and days left. `show` shows one account's records, passwords masked, beside the
resources that run for it: its Modeler projects, its worker-node group and its EMR clusters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml

from rpa.admin import (
    CommandError,
    add_common_options,
    command_options,
    format_table,
    mask_secrets,
    open_command_environment,
    print_record_errors,
    read_inventory,
    run_command,
)
from rpa.clients import errors
from rpa.clients.aws import ACTIVE_CLUSTER_STATES, ClusterState, GroupState
from rpa.clients.modeler import RemoteProject
from rpa.environment import Environment, EnvironmentError
from rpa.i18n import Lang, text
from rpa.inventory import FOLDERS, Account, Inventory, RecordError, today_in_service_zone
from rpa.mcm import parse_cluster_name
from rpa.pool import POOL_STATES, PoolState, days_left, pool_state, pool_states, read_history
from rpa.report import EXIT_FAILED, EXIT_OK
from rpa.settings import Settings

log = logging.getLogger(__name__)


def add_commands(subcommands: Any) -> None:
    """Add `list` and `show` to the subcommands of `rpa trial`."""
    listing = subcommands.add_parser("list", help="every pooled account and its state")
    listing.add_argument("--state", action="append", choices=POOL_STATES, default=[],
                         help="show only accounts in this state (repeatable)")
    add_common_options(listing)
    listing.set_defaults(handler=lambda args: run_command(
        "trial", args, lambda settings: run_list(args, settings)))
    show = subcommands.add_parser("show", help="one account's records and live resources")
    show.add_argument("account", metavar="ACCOUNT")
    add_common_options(show)
    show.set_defaults(handler=lambda args: run_command(
        "trial", args, lambda settings: run_show(args, settings)))


# rpa trial list

@dataclass(frozen=True)
class PoolRow:
    account: str
    state: PoolState
    owner: str | None = None
    purpose: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    days_left: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "state": self.state, "owner": self.owner,
                "purpose": self.purpose,
                "start_date": self.start.isoformat() if self.start else None,
                "end_date": self.end.isoformat() if self.end else None,
                "days_left": self.days_left}


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=True)
    today = today_in_service_zone(options.now)
    with open_command_environment(settings, options, writes=False) as env:
        _, inventory = read_inventory(env)
        history, unread = read_history(env, required=False)
    rows = pool_rows(inventory, today, pool_states(inventory, today, history))
    selected = [row for row in rows if not args.state or row.state in args.state]
    if options.output == "json":
        print(json.dumps({
            "now": options.now.isoformat(), "today": today.isoformat(),
            "counts": {state: sum(1 for row in rows if row.state == state)
                       for state in POOL_STATES},
            "accounts": [row.to_json() for row in selected],
            "errors": [_error_json(error) for error in inventory.errors],
            "audit_table": None if unread is None else f"not read: {unread}",
        }, ensure_ascii=False, indent=2))
    else:
        print_pool(rows, selected, inventory.errors, unread, options.lang, today)
    return EXIT_FAILED if inventory.errors else EXIT_OK


def pool_rows(inventory: Inventory, today: dt.date, states: dict[str, PoolState]
              ) -> list[PoolRow]:
    rows = []
    for name, state in states.items():
        account = inventory.accounts.get(name)
        if account is None:
            rows.append(PoolRow(name, state))
            continue
        record = account.password
        left = None
        if record.end_date is not None and state not in ("free", "released"):
            left = days_left(record, today)
        rows.append(PoolRow(name, state, record.owner, record.purpose, record.start_date,
                            record.end_date, left))
    return rows


def print_pool(rows: list[PoolRow], selected: list[PoolRow], record_errors: list[RecordError],
               unread: str | None, lang: Lang, today: dt.date) -> None:
    counts = ", ".join(f"{text(f'pool.state.{state}', lang)} "
                       f"{sum(1 for row in rows if row.state == state)}"
                       for state in POOL_STATES)
    print(text("pool.title", lang, today=today, total=len(rows), counts=counts))
    header = [text(f"pool.column.{name}", lang) for name in
              ("account", "state", "owner", "purpose", "period", "days")]
    table = [[row.account, text(f"pool.state.{row.state}", lang), row.owner or "",
              text(f"purpose.{row.purpose}", lang) if row.purpose else "",
              f"{row.start} ~ {row.end}" if row.start else "", dday(row.days_left)]
             for row in selected]
    print("\n".join(format_table(header, table)))
    if unread is not None:
        print(text("pool.audit_unread", lang, reason=unread))
    if record_errors:
        print()
        print_record_errors(record_errors, lang)


def dday(left: int | None) -> str:
    """D-3 for three days left, D-day on the last day, D+2 two days after it."""
    if left is None:
        return ""
    if left == 0:
        return "D-day"
    return f"D-{left}" if left > 0 else f"D+{-left}"


def _error_json(error: RecordError) -> dict[str, str]:
    return {"account": error.account, "field": error.field, "value": error.value,
            "reason": error.reason}


# rpa trial show

@dataclass
class LiveView:
    """The live resources of one account; a source that could not be read is in `unread`."""

    projects: list[RemoteProject] | None = None
    group: GroupState | None = None
    clusters: list[ClusterState] | None = None
    unread: dict[str, str] = field(default_factory=dict)


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=True)
    today = today_in_service_zone(options.now)
    name = args.account
    with open_command_environment(settings, options, writes=False) as env:
        raw, inventory = read_inventory(env)
        records = {folder: raw.get(folder, {}).get(name) for folder in FOLDERS}
        if all(record is None for record in records.values()):
            raise CommandError(f"{name}: no records for this account")
        account = inventory.accounts.get(name)
        history, _ = read_history(env, required=False)
        state: PoolState = pool_state(account, today, history) if account else "invalid"
        live = read_live(env, account) if account else LiveView()
    masked = {folder: mask_secrets(record) if isinstance(record, dict) else record
              for folder, record in records.items() if record is not None}
    record_errors = [error for error in inventory.errors if error.account == name]
    if options.output == "json":
        print(json.dumps(show_json(name, state, masked, live, record_errors), ensure_ascii=False,
                         indent=2, default=str))
    else:
        print_show(name, state, account, masked, live, record_errors, options.lang, today)
    return EXIT_FAILED if record_errors or live.unread else EXIT_OK


def read_live(env: Environment, account: Account) -> LiveView:
    """Read the account's projects, worker-node group and EMR clusters, each on its own."""
    live = LiveView()
    modeler = account.modeler
    if env.sandbox is not None:
        env.prepare_sandbox(Inventory({account.name: account}))
    if modeler is not None:
        try:
            live.projects = [project for project in env.modeler(modeler.site).list_projects()
                             if project.owner == account.name]
        except (errors.ClientError, EnvironmentError) as err:
            live.unread["projects"] = str(err)
    if modeler is not None and modeler.autoscaling_group is not None:
        group = modeler.autoscaling_group.name
        try:
            live.group = env.autoscaling().describe_groups([group]).get(group)
        except errors.ClientError as err:
            live.unread["autoscaling_group"] = str(err)
    if account.mcm is not None:
        try:
            live.clusters = [cluster for cluster in env.emr().list_clusters(ACTIVE_CLUSTER_STATES)
                             if (parsed := parse_cluster_name(cluster.name))
                             and parsed[0] == account.name]
        except errors.ClientError as err:
            live.unread["clusters"] = str(err)
    for source, reason in live.unread.items():
        log.error("cannot read %s: %s", source, reason, extra={"account": account.name})
    return live


def show_json(name: str, state: PoolState, records: dict[str, Any], live: LiveView,
              record_errors: list[RecordError]) -> dict[str, Any]:
    return {
        "account": name, "state": state, "records": records,
        "live": {
            "projects": None if live.projects is None else [
                {"id": p.id, "name": p.name, "resources": p.resources} for p in live.projects],
            "autoscaling_group": None if live.group is None else {
                "name": live.group.name, "desired": live.group.desired,
                "running": live.group.in_service, "min": live.group.min,
                "max": live.group.max},
            "clusters": None if live.clusters is None else [
                {"id": c.id, "name": c.name, "state": c.state} for c in live.clusters],
            "unread": live.unread,
        },
        "errors": [_error_json(error) for error in record_errors],
    }


def print_show(name: str, state: PoolState, account: Account | None, records: dict[str, Any],
               live: LiveView, record_errors: list[RecordError], lang: Lang,
               today: dt.date) -> None:
    left = None
    if account is not None and account.password.end_date is not None \
            and state not in ("free", "released"):
        left = days_left(account.password, today)
    print(f"{name} · {text(f'pool.state.{state}', lang)}"
          + (f" · {dday(left)}" if left is not None else ""))
    for folder, record in records.items():
        print(f"\n{folder}/{name}")
        dumped = yaml.safe_dump(record, allow_unicode=True, sort_keys=False)
        print("\n".join(f"  {line}" for line in dumped.rstrip().splitlines()))
    if record_errors:
        print()
        print_record_errors(record_errors, lang)
    print("\n" + text("show.live", lang))
    for line in live_lines(account, live, lang):
        print(f"  {line}")


def live_lines(account: Account | None, live: LiveView, lang: Lang) -> list[str]:
    if account is None:
        return [text("show.live.none", lang)]
    lines = []
    if account.modeler is not None:
        lines.append(_projects_line(account.modeler.site, live, lang))
        group = account.modeler.autoscaling_group
        if group is not None:
            lines.append(_group_line(group.name, live, lang))
    if account.mcm is not None:
        lines.append(_clusters_line(live, lang))
    return lines or [text("show.live.none", lang)]


def _projects_line(site: str, live: LiveView, lang: Lang) -> str:
    if live.projects is None:
        return text("show.unread", lang, what=text("show.projects", lang, site=site),
                    reason=live.unread.get("projects", ""))
    names = ", ".join(project.name for project in live.projects) or text("show.none", lang)
    return f"{text('show.projects', lang, site=site)}: {names}"


def _group_line(name: str, live: LiveView, lang: Lang) -> str:
    if "autoscaling_group" in live.unread:
        return text("show.unread", lang, what=name, reason=live.unread["autoscaling_group"])
    if live.group is None:
        return text("show.group_missing", lang, group=name)
    return text("show.group", lang, group=name, desired=live.group.desired,
                running=live.group.in_service)


def _clusters_line(live: LiveView, lang: Lang) -> str:
    if live.clusters is None:
        return text("show.unread", lang, what="EMR", reason=live.unread.get("clusters", ""))
    found = ", ".join(f"{cluster.name} {cluster.id} {cluster.state}"
                      for cluster in live.clusters) or text("show.none", lang)
    return f"{text('show.clusters', lang)}: {found}"
