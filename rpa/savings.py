"""What the core-time schedules save: `rpa report savings --from DATE --to DATE`.

For each account, over the days of the range that its usage period covers (Asia/Seoul
calendar days), the node hours under its schedules are compared with running around the
clock:

- worker nodes (modeler record): core_desired * core hours + off_desired * the other hours,
  against core_desired * every hour;
- EMR (mcm record): per cluster, (1 master + core_count core nodes) * core hours, or every
  hour for a keep_alive cluster, against the same nodes * every hour.

Core hours come from `Schedule.windows`, so weekdays, holidays such as Korea's and excluded
dates count exactly as the jobs count them. The cost is an estimate: the saved node hours
times RPA_PRICE_WORKER_NODE_HOUR and RPA_PRICE_EMR_NODE_HOUR, one flat price per node hour
each. Without the prices the report shows hours only.

NOTE: a record holds only its account's current period, so an account that served several
users in the range counts the days of its current user only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from rpa.admin import (
    CommandError,
    add_common_options,
    command_options,
    format_table,
    open_command_environment,
    print_record_errors,
    read_inventory,
    run_command,
)
from rpa.i18n import Lang, text
from rpa.inventory import SERVICE_ZONE, Account, Inventory, today_in_service_zone
from rpa.report import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rpa.schedule import Schedule
from rpa.settings import Settings

SECONDS_PER_HOUR = 3600
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class NodeHours:
    """Node hours under the schedule and around the clock over the same days."""

    scheduled: float = 0.0
    around_the_clock: float = 0.0

    @property
    def saved(self) -> float:
        return self.around_the_clock - self.scheduled

    def __add__(self, other: NodeHours) -> NodeHours:
        return NodeHours(self.scheduled + other.scheduled,
                         self.around_the_clock + other.around_the_clock)

    def to_json(self) -> dict[str, float]:
        return {"scheduled": self.scheduled, "around_the_clock": self.around_the_clock,
                "saved": self.saved}


@dataclass(frozen=True)
class Prices:
    """Price of one node hour; None where the setting is unset."""

    worker_node_hour: float | None
    emr_node_hour: float | None
    currency: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        return cls(settings.price_worker_node_hour, settings.price_emr_node_hour,
                   settings.price_currency)

    def cost(self, workers: NodeHours, emr: NodeHours) -> float | None:
        """Estimate the cost of the saved hours; None when a needed price is unset."""
        parts = [(workers.saved, self.worker_node_hour), (emr.saved, self.emr_node_hour)]
        if any(hours and price is None for hours, price in parts):
            return None
        return sum(hours * (price or 0.0) for hours, price in parts)


@dataclass(frozen=True)
class AccountSavings:
    account: str
    first: dt.date
    last: dt.date
    workers: NodeHours
    emr: NodeHours

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


# Computation: pure.

def covered_days(account: Account, first: dt.date, last: dt.date
                 ) -> tuple[dt.date, dt.date] | None:
    """Return the days of [first, last] inside the account's usage period, or None."""
    record = account.password
    if record.start_date is None or record.end_date is None:
        return None
    start, end = max(first, record.start_date), min(last, record.end_date)
    return (start, end) if start <= end else None


def core_hours(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> float:
    return sum((closes - opens).total_seconds()
               for opens, closes in schedule.windows(start, end)) / SECONDS_PER_HOUR


def account_savings(account: Account, first: dt.date, last: dt.date) -> AccountSavings | None:
    """Count the account's node hours over the covered days; None when the period misses them."""
    covered = covered_days(account, first, last)
    if covered is None:
        return None
    start = dt.datetime.combine(covered[0], dt.time(), SERVICE_ZONE)
    end = dt.datetime.combine(covered[1] + ONE_DAY, dt.time(), SERVICE_ZONE)
    every_hour = (end - start).total_seconds() / SECONDS_PER_HOUR
    workers = NodeHours()
    group = account.modeler.autoscaling_group if account.modeler else None
    if account.modeler is not None and group is not None:
        core = core_hours(account.modeler.schedule, start, end)
        workers = NodeHours(group.core_desired * core + group.off_desired * (every_hour - core),
                            group.core_desired * every_hour)
    emr = NodeHours()
    if account.mcm is not None and account.mcm.clusters:
        core = core_hours(account.mcm.schedule, start, end)
        for cluster in account.mcm.clusters:
            nodes = 1 + cluster.core_count
            hours = every_hour if cluster.keep_alive else core
            emr += NodeHours(nodes * hours, nodes * every_hour)
    return AccountSavings(account.name, covered[0], covered[1], workers, emr)


def compute_savings(inventory: Inventory, first: dt.date, last: dt.date) -> list[AccountSavings]:
    """Count the savings of every valid account whose period covers a day of [first, last]."""
    found = (account_savings(account, first, last)
             for _, account in sorted(inventory.accounts.items()))
    return [item for item in found if item is not None]


# Command line.

def add_commands(commands: Any) -> None:
    """Add `rpa report savings` to the `rpa` parser's subcommands."""
    from rpa.trial import parse_date

    report = commands.add_parser("report", help="reports over the account records")
    subcommands = report.add_subparsers(dest="report_command", required=True)
    savings = subcommands.add_parser(
        "savings", help="node hours and cost the core-time schedules save")
    savings.add_argument("--from", dest="first", type=parse_date, default=None, metavar="DATE",
                         help="first day (YYYY-MM-DD, Asia/Seoul; default: first day of the "
                              "month before --now)")
    savings.add_argument("--to", dest="last", type=parse_date, default=None, metavar="DATE",
                         help="last day, included (default: last day of that month)")
    add_common_options(savings)
    savings.set_defaults(handler=lambda args: run_command(
        "report", args, lambda settings: run_savings(args, settings)))


def run_savings(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=True)
    first, last = report_range(args.first, args.last, today_in_service_zone(options.now))
    with open_command_environment(settings, options, writes=False) as env:
        _, inventory = read_inventory(env)
    rows = compute_savings(inventory, first, last)
    prices = Prices.from_settings(settings)
    if options.output == "json":
        print(json.dumps(savings_json(rows, prices, first, last, inventory), ensure_ascii=False,
                         indent=2))
    else:
        print_savings(rows, prices, first, last, options.lang)
        if inventory.errors:
            print()
            print_record_errors(inventory.errors, options.lang)
    return EXIT_FAILED if inventory.errors else EXIT_OK


def report_range(first: dt.date | None, last: dt.date | None, today: dt.date
                 ) -> tuple[dt.date, dt.date]:
    """Return the requested days; each missing end defaults to the month before `today`."""
    previous_month_end = today.replace(day=1) - ONE_DAY
    first = first or previous_month_end.replace(day=1)
    last = last or previous_month_end
    if last < first:
        raise CommandError(f"--to {last} is before --from {first}", status=EXIT_USAGE)
    return first, last


def total(rows: list[AccountSavings]) -> tuple[NodeHours, NodeHours]:
    workers, emr = NodeHours(), NodeHours()
    for row in rows:
        workers += row.workers
        emr += row.emr
    return workers, emr


def savings_json(rows: list[AccountSavings], prices: Prices, first: dt.date, last: dt.date,
                 inventory: Inventory) -> dict[str, Any]:
    workers, emr = total(rows)
    return {
        "from": first.isoformat(), "to": last.isoformat(), "timezone": str(SERVICE_ZONE),
        "prices": {"worker_node_hour": prices.worker_node_hour,
                   "emr_node_hour": prices.emr_node_hour, "currency": prices.currency},
        "accounts": [{"account": row.account, "first": row.first.isoformat(),
                      "last": row.last.isoformat(), "days": row.days,
                      "worker_node_hours": row.workers.to_json(),
                      "emr_node_hours": row.emr.to_json(),
                      "cost_saved": prices.cost(row.workers, row.emr)} for row in rows],
        "total": {"worker_node_hours": workers.to_json(), "emr_node_hours": emr.to_json(),
                  "cost_saved": prices.cost(workers, emr)},
        "errors": [{"account": e.account, "field": e.field, "value": e.value,
                    "reason": e.reason} for e in inventory.errors],
    }


def print_savings(rows: list[AccountSavings], prices: Prices, first: dt.date, last: dt.date,
                  lang: Lang) -> None:
    print(text("savings.title", lang, first=first, last=last, count=len(rows)))
    header = [text(f"savings.column.{name}", lang, currency=prices.currency)
              for name in ("account", "days", "workers", "emr", "cost")]
    table = [[row.account, str(row.days), _hours(row.workers), _hours(row.emr),
              _money(prices.cost(row.workers, row.emr))] for row in rows]
    workers, emr = total(rows)
    table.append([text("savings.total", lang), "", _hours(workers), _hours(emr),
                  _money(prices.cost(workers, emr))])
    print("\n".join(format_table(header, table)))
    print(text("savings.legend", lang))
    if prices.worker_node_hour is None or prices.emr_node_hour is None:
        print(text("savings.no_prices", lang))
    else:
        print(text("savings.prices", lang, worker=prices.worker_node_hour,
                   emr=prices.emr_node_hour, currency=prices.currency))


def _hours(hours: NodeHours) -> str:
    return " / ".join(f"{value:,.1f}".removesuffix(".0")
                      for value in (hours.scheduled, hours.around_the_clock, hours.saved))


def _money(cost: float | None) -> str:
    return "-" if cost is None else f"{cost:,.2f}"
