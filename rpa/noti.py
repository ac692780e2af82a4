"""The noti job: the daily report of the trial accounts, posted to Slack.

It runs daily at 09:10 Asia/Seoul as `python -m rpa.noti` or `rpa noti`. It reads the
records and what the report shows beside them: the audit table, one Auto Scaling description
of every worker-node group, one EMR listing and one project listing per Modeler site. Then
it builds the report (`rpa.daily_report`) and posts it to RPA_SLACK_CHANNEL. When Slack's
limits need several messages, the later ones are replies in the first one's thread.
`--dry-run` prints the messages and posts nothing.

noti changes nothing, so it has no plan to apply, and `rpa.job.execute` does not fit it:
the deletion guard, the apply step and the audit rows of execute exist for changes. noti
reuses the pieces that execute is made of instead: `RunOptions`, the settings, the logging
setup, `open_environment` (records, clients, sandbox stand-ins), `validate_records` and the
exit statuses. Exit status: 0 when the report was posted complete; 1 when it could not be
posted, or was posted with a source unread or a record invalid; 2 for bad settings or usage.

With `--sandbox`, the report goes to a Slack stand-in started for the run, and noti prints
what the stand-in received. When RPA_SLACK_BASE_URL names another server, that server gets
the report instead, with RPA_SLACK_TOKEN and RPA_SLACK_CHANNEL as usual.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from pydantic import SecretStr

from rpa import blocks
from rpa.blocks import Message
from rpa.clients import errors
from rpa.clients.aws import ACTIVE_CLUSTER_STATES
from rpa.clients.db import AuditEntry
from rpa.clients.slack import SlackClient
from rpa.daily_report import (
    FAILURE_WINDOW,
    DailyReport,
    Observed,
    build_report,
    render_messages,
)
from rpa.environment import Environment, EnvironmentError, open_environment
from rpa.i18n import Lang, text
from rpa.inventory import (
    Account,
    EmptyMountError,
    InventoryFileError,
    today_in_service_zone,
    validate_records,
)
from rpa.job import RunOptions
from rpa.logs import setup_logging
from rpa.mcm import parse_cluster_name
from rpa.report import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rpa.sandbox.slack import Channel, PostedMessage, SlackStandIn
from rpa.settings import SLACK_API_URL, Settings, SettingsError, load_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

JOB = "noti"
CHANNEL_SETTING = "RPA_SLACK_CHANNEL"
# The Slack stand-in of a sandbox run: its bot token and its one channel, of which the bot
# is a member.
SANDBOX_SLACK_TOKEN = "xoxb-sandbox"
SANDBOX_CHANNEL = Channel("C0SANDBOX01", "accuinsight-trial")


# Command line.

def add_options(parser: argparse.ArgumentParser) -> None:
    from rpa.cli import add_job_options

    add_job_options(parser, plan_options=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rpa.noti",
                                     description="Post the daily report of the trial "
                                                 "accounts to Slack.")
    add_options(parser)
    return run_noti(parser.parse_args(argv))


def run_noti(args: argparse.Namespace) -> int:
    """Build the settings and options from parsed arguments and run the job once."""
    try:
        settings = load_settings(**({"lang": args.lang} if args.lang else {}))
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(now=args.now or dt.datetime.now(dt.UTC), dry_run=args.dry_run,
                         accounts=tuple(args.account), inventory_path=args.inventory,
                         sandbox=args.sandbox, output=args.output, lang=settings.lang)
    return execute(options, settings)


# The run.

def execute(options: RunOptions, settings: Settings) -> int:
    """Run the job once and return the exit status."""
    setup_logging(job=JOB, run_id=uuid.uuid4().hex[:12], dry_run=options.dry_run,
                  level=settings.log_level, fmt=settings.log_format)
    log.info("starting noti at %s%s", options.now.isoformat(),
             " (dry-run: nothing will be posted)" if options.dry_run else "")
    problem = missing_slack_setting(settings, options)
    if problem is not None:
        _fail(problem)
        return EXIT_USAGE
    try:
        with open_environment(settings, options) as env:
            report = read_report(env, options)
            messages = render_messages(report, options.lang)
            if options.dry_run:
                print(render_output(report, messages, options, channel=settings.slack_channel))
            else:
                deliver(report, messages, settings, options)
    except (EnvironmentError, EmptyMountError, InventoryFileError) as err:
        _fail(str(err))
        return EXIT_USAGE
    except errors.ClientError as err:
        _fail(str(err))
        return EXIT_FAILED
    log.info("finished noti: %d messages, %d accounts in use, %d sources unread, "
             "%d invalid records", len(messages), len(report.in_use), len(report.unread),
             len(report.record_errors))
    return EXIT_OK if report.is_complete else EXIT_FAILED


def missing_slack_setting(settings: Settings, options: RunOptions) -> str | None:
    """Say which Slack setting a posting run lacks, before anything is read."""
    if options.dry_run or uses_sandbox_slack(settings, options):
        return None
    if settings.slack_token is None:
        return ("RPA_SLACK_TOKEN is not set: set it to the bot token (xoxb-…) of the Slack "
                "app, or run with --dry-run")
    if not settings.slack_channel:
        return (f"{CHANNEL_SETTING} is not set: set it to the ID (C…) of the report's "
                "channel, or run with --dry-run")
    return None


def uses_sandbox_slack(settings: Settings, options: RunOptions) -> bool:
    """True when a sandbox run posts to a Slack stand-in of its own."""
    return options.sandbox and settings.slack_base_url == SLACK_API_URL


def read_report(env: Environment, options: RunOptions) -> DailyReport:
    raw, read_errors = env.records.read()
    inventory = validate_records(raw, read_errors=read_errors).select(list(options.accounts))
    for error in inventory.errors:
        log.error("invalid record %s: %s", error.field, error.message(),
                  extra={"account": error.account})
    if env.sandbox is not None:
        env.prepare_sandbox(inventory)
    today = today_in_service_zone(options.now)
    in_use = [account for account in inventory.accounts.values() if account.is_in_period(today)]
    observed = observe(env, in_use, options)
    return build_report(inventory, observed, options.now)


# Observe: one call per source (and per Modeler site), never one per account.

def observe(env: Environment, accounts: Sequence[Account], options: RunOptions) -> Observed:
    """Read what the report shows beside the records; a source that fails is noted, not fatal."""
    observed = Observed()
    observed.audit = _read(observed, "audit table rpa_action_log",
                           partial(read_audit, env, options))
    groups = sorted({group.name for account in accounts if account.modeler
                     and (group := account.modeler.autoscaling_group) is not None})
    observed.groups = _read(observed, "Auto Scaling groups",
                            partial(env.autoscaling().describe_groups, groups)) if groups else {}
    has_clusters = any(account.mcm is not None for account in accounts)
    observed.clusters = _read(observed, "EMR clusters",
                              partial(read_clusters, env)) if has_clusters else {}
    observed.site_projects = read_sites(env, accounts, observed)
    return observed


def _read(observed: Observed, source: str, read: Callable[[], T]) -> T | None:
    try:
        return read()
    except errors.ClientError as err:
        log.error("cannot read %s: %s", source, err)
        observed.unread.append((source, str(err)))
        return None


def read_audit(env: Environment, options: RunOptions) -> list[AuditEntry]:
    """Read the audit rows of the failure window, limited to --account when given."""
    entries = env.database().read_actions(since=options.now - FAILURE_WINDOW)
    if options.accounts:
        entries = [entry for entry in entries if entry.account in options.accounts]
    return entries


def read_clusters(env: Environment) -> dict[tuple[str, str], list[str]]:
    """Read the states of the active EMR clusters by (account, cluster name) in one listing.

    Clusters whose names the mcm job did not give (`rpa-<account>/<cluster>`) are left out.
    """
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cluster in env.emr().list_clusters(ACTIVE_CLUSTER_STATES):
        parsed = parse_cluster_name(cluster.name)
        if parsed is not None:
            found[parsed].append(cluster.state)
    return dict(found)


def read_sites(env: Environment, accounts: Sequence[Account], observed: Observed
               ) -> dict[str, dict[str, set[str]]]:
    """Read project names by site and owner, one listing per site, when a token is set."""
    if env.settings.modeler_token is None:
        log.info("RPA_MODELER_TOKEN is not set; projects are shown from the records alone")
        return {}
    sites = sorted({account.modeler.site for account in accounts if account.modeler})
    listed: dict[str, dict[str, set[str]]] = {}
    for site in sites:
        projects = _read(observed, f"Modeler projects at {site}",
                         env.modeler(site).list_projects)
        if projects is None:
            continue
        owners: dict[str, set[str]] = defaultdict(set)
        for project in projects:
            owners[project.owner].add(project.name)
        listed[site] = dict(owners)
    return listed


# Post and print.

def deliver(report: DailyReport, messages: Sequence[Message], settings: Settings,
            options: RunOptions) -> None:
    """Post the messages as one thread and print what was posted."""
    with open_slack(settings, options) as (client, channel, stand_in):
        posted = client.post_thread(channel, messages, channel_setting=CHANNEL_SETTING)
        log.info("posted %d messages to Slack channel %s (first ts %s)", len(posted), channel,
                 posted[0])
        print(render_output(report, messages, options, channel=channel, posted=posted))
        if stand_in is not None and options.output == "text":
            print("\n" + text("noti.sandbox_slack", options.lang))
            print(render_plain(received(stand_in.messages), options.lang))


@contextmanager
def open_slack(settings: Settings, options: RunOptions
               ) -> Iterator[tuple[SlackClient, str, SlackStandIn | None]]:
    """Yield the Slack client and channel of the run, or a stand-in's in a sandbox run."""
    if not uses_sandbox_slack(settings, options):
        assert settings.slack_channel is not None
        yield SlackClient.from_settings(settings), settings.slack_channel, None
        return
    with SlackStandIn(token=SANDBOX_SLACK_TOKEN, channels=[SANDBOX_CHANNEL]) as stand_in:
        log.info("sandbox: posting to a Slack stand-in at %s", stand_in.base_url)
        local = settings.model_copy(update={"slack_token": SecretStr(SANDBOX_SLACK_TOKEN),
                                            "slack_base_url": stand_in.base_url})
        yield SlackClient.from_settings(local), SANDBOX_CHANNEL.id, stand_in


def received(posted: Sequence[PostedMessage]) -> list[Message]:
    return [Message(message.text, message.blocks) for message in posted]


def render_output(report: DailyReport, messages: Sequence[Message], options: RunOptions, *,
                  channel: str | None, posted: Sequence[str] | None = None) -> str:
    """The messages as one JSON document, or as text: a rendering, or after posting a summary."""
    if options.output == "json":
        items: list[dict[str, Any]] = []
        for index, message in enumerate(messages):
            item = {**message.to_json(), "thread_reply": index > 0}
            if posted is not None:
                item["ts"] = posted[index]
            items.append(item)
        document = {"job": JOB, "dry_run": options.dry_run, "now": options.now.isoformat(),
                    "channel": channel, "counts": report.counts(), "messages": items}
        return json.dumps(document, ensure_ascii=False, indent=2)
    if posted is None:
        return render_plain(messages, options.lang)
    return text("noti.posted", options.lang, channel=channel, count=len(posted), ts=posted[0])


def render_plain(messages: Sequence[Message], lang: Lang) -> str:
    return blocks.render_plain(messages, separator=lambda number, total: text(
        "noti.separator", lang, number=number, total=total))


def _fail(message: str) -> None:
    log.error("%s", message)
    print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    from rpa.cli import run_program

    raise SystemExit(run_program(main))
