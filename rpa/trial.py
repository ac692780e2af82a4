"""Granting, extending and revoking pooled accounts: `rpa trial grant|extend|revoke`.

These commands write the account records, and the jobs then make the platform match them.
`--apply-now` and `revoke --now` run the jobs for the one account at once. Every write is
check-and-set through `RecordStore.update` and keeps the fields it does not change.

A grant goes in this order, so that a concurrent grant of the same account loses cleanly:

1. check the request and the template, read the records and the audit table, pick the
   account: nothing is written before all of this passes;
2. claim the account: its password record gets the owner and the period, provided it is
   still free or released when the write happens;
3. write its modeler/ and mcm/ records from the template;
4. give it a new password in CloudZ with the crash-safe rotation of rpa.passwords;
5. print the login once, on stdout only.

When step 3 or 4 fails, the claim is undone, so the account returns to the pool.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rpa.admin import (
    CommandError,
    RecordConflict,
    add_common_options,
    command_options,
    iso_text,
    open_command_environment,
    read_inventory,
    run_command,
)
from rpa.clients import errors
from rpa.environment import Environment
from rpa.grant_templates import TemplateError, load_template
from rpa.i18n import Lang, text
from rpa.inventory import (
    Account,
    Inventory,
    PasswordRecord,
    RawRecords,
    today_in_service_zone,
)
from rpa.job import RunOptions
from rpa.passwords import PasswordPolicy, RotationError, generate_password, rotate_password
from rpa.pool import GRANTABLE_STATES, PoolState, is_grantable_record, pool_states, read_history
from rpa.records import RecordStore, create_record
from rpa.report import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rpa.settings import Settings

log = logging.getLogger(__name__)

PURPOSES = ("trial", "education", "demo")
# The fields a grant sets in the password record, and so the fields undoing it restores.
PERIOD_FIELDS = ("owner", "email", "purpose", "start_date", "end_date", "released_at")
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class GrantRequest:
    owner: str
    email: str
    purpose: str
    start: dt.date
    end: dt.date
    template: str
    account: str | None

    def period_fields(self) -> dict[str, str]:
        return {"owner": self.owner, "email": self.email, "purpose": self.purpose,
                "start_date": self.start.isoformat(), "end_date": self.end.isoformat()}


@dataclass(frozen=True)
class Grant:
    """A done grant; `password` is printed once and never logged."""

    account: str
    username: str
    password: str
    request: GrantRequest
    modeler_site: str
    mcm_site: str | None


# Command line.

def add_commands(commands: Any) -> None:
    """Add `rpa trial` and its subcommands to the `rpa` parser's subcommands."""
    from rpa import trial_view

    trial = commands.add_parser("trial", help="grant, extend, revoke and inspect the pooled "
                                "accounts")
    subcommands = trial.add_subparsers(dest="trial_command", required=True)
    _add_grant(subcommands)
    extend = subcommands.add_parser("extend", help="move the last day of an account's period")
    extend.add_argument("account", metavar="ACCOUNT")
    extend.add_argument("--until", required=True, type=parse_date, metavar="DATE",
                        help="new last day of use (YYYY-MM-DD, Asia/Seoul)")
    add_common_options(extend)
    extend.set_defaults(handler=lambda args: run_command(
        "trial", args, lambda settings: run_extend(args, settings)))
    revoke = subcommands.add_parser("revoke", help="end an account's period yesterday")
    revoke.add_argument("account", metavar="ACCOUNT")
    revoke.add_argument("--now", dest="release_now", action="store_true",
                        help="run the end-of-service job for the account right away")
    revoke.add_argument("--at", type=_parse_instant, default=None, metavar="INSTANT",
                        help="act as of this instant (ISO 8601 with offset); default: now")
    add_common_options(revoke, now=False)
    revoke.set_defaults(handler=lambda args: run_command(
        "trial", args, lambda settings: run_revoke(args, settings)))
    trial_view.add_commands(subcommands)


def _add_grant(subcommands: Any) -> None:
    grant = subcommands.add_parser("grant", help="give a free pooled account to a user")
    grant.add_argument("--owner", required=True,
                       help="person and team using the account, e.g. '김민준 (AI교육센터)'")
    grant.add_argument("--email", required=True, help="contact address of the owner")
    grant.add_argument("--purpose", required=True, choices=PURPOSES)
    grant.add_argument("--until", required=True, type=parse_date, metavar="DATE",
                       help="last day of use (YYYY-MM-DD, Asia/Seoul)")
    grant.add_argument("--from", dest="start", type=parse_date, default=None, metavar="DATE",
                       help="first day of use (default: today in Asia/Seoul)")
    grant.add_argument("--template", default=None,
                       help="record template (default: the purpose); see templates/")
    grant.add_argument("--account", default=None, metavar="NAME",
                       help="grant this account instead of the first free one")
    grant.add_argument("--apply-now", action="store_true",
                       help="run the modeler and mcm jobs for the account right away")
    add_common_options(grant)
    grant.set_defaults(handler=lambda args: run_command(
        "trial", args, lambda settings: run_grant(args, settings)))


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {value!r}: use YYYY-MM-DD") from None


def _parse_instant(value: str) -> dt.datetime:
    from rpa.cli import parse_now

    return parse_now(value)


# Grant.

def run_grant(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=False)
    today = today_in_service_zone(options.now)
    request = GrantRequest(
        owner=args.owner.strip(), email=args.email.strip(), purpose=args.purpose,
        start=args.start or today, end=args.until, template=args.template or args.purpose,
        account=args.account)
    check_request(request, today)
    try:
        template = load_template(request.template, settings)
    except TemplateError as err:
        raise CommandError(str(err), status=EXIT_USAGE) from None
    with open_command_environment(settings, options, writes=True) as env:
        raw, inventory = read_inventory(env)
        history, _ = read_history(env, required=True)
        account = pick_account(inventory, pool_states(inventory, today, history),
                               request.account)
        try:
            modeler, mcm = template.render(account.name, settings)
        except TemplateError as err:
            raise CommandError(str(err), status=EXIT_USAGE) from None
        grant = issue(env, raw, account, request, modeler, mcm, now=options.now)
    log.info("granted to %s from %s to %s with template %s", request.owner, request.start,
             request.end, request.template, extra={"account": grant.account})
    if options.output == "text":
        print_grant(grant, options.lang)
    jobs = apply_now(grant, settings, options, today) if args.apply_now else []
    if options.output == "json":
        print(json.dumps({**grant_json(grant), "apply_now": jobs}, ensure_ascii=False,
                         indent=2))
    return EXIT_FAILED if any(job["exit_status"] != EXIT_OK for job in jobs) else EXIT_OK


def check_request(request: GrantRequest, today: dt.date) -> None:
    """Reject an incomplete or impossible request (exit 2) before anything is read."""
    for option, value in (("--owner", request.owner), ("--email", request.email)):
        if not value:
            raise CommandError(f"{option} is empty: give the account's user", status=EXIT_USAGE)
    if request.end < request.start:
        raise CommandError(f"the period ends (--until {request.end}) before it starts "
                           f"(--from {request.start})", status=EXIT_USAGE)
    if request.end < today:
        raise CommandError(f"--until {request.end} is in the past (today is {today} in "
                           "Asia/Seoul)", status=EXIT_USAGE)
    try:
        PasswordRecord.model_validate({"username": "check", "password": "check",
                                       **request.period_fields()})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
                             for item in err.errors(include_url=False))
        raise CommandError(f"invalid grant: {problems}", status=EXIT_USAGE) from None


def pick_account(inventory: Inventory, states: dict[str, PoolState],
                 named: str | None) -> Account:
    """Return the named account when it may be granted, else the first free or released one.

    Raises CommandError (exit 1) when the named account is in use, expired, quarantined or
    invalid, and when the pool has no free account.
    """
    if named is None:
        free = [name for name, state in states.items() if state in GRANTABLE_STATES]
        if not free:
            counts = ", ".join(f"{state} {sum(1 for s in states.values() if s == state)}"
                               for state in sorted(set(states.values())))
            raise CommandError(f"no free account in the pool ({counts or 'no accounts'})")
        return inventory.accounts[free[0]]
    state = states.get(named)
    if state is None:
        raise CommandError(f"{named}: no records for this account")
    if state == "invalid":
        raise CommandError(f"{named}: its records are invalid; see rpa inventory validate")
    if state not in GRANTABLE_STATES:
        reason = _why_not(inventory.accounts[named], state)
        raise CommandError(f"{named} cannot be granted: {reason}")
    return inventory.accounts[named]


def _why_not(account: Account, state: PoolState) -> str:
    record = account.password
    if state in ("scheduled", "active", "ending"):
        return (f"still in use by {record.owner or 'an unnamed owner'} from "
                f"{record.start_date} to {record.end_date}")
    if state == "expired":
        return (f"its period ended on {record.end_date} and the end-of-service job has not "
                "released it yet")
    return ("quarantined: the end-of-service job failed for it (rpa_action_log, job endsvc) "
            "and has not released it since; it is granted only after a release succeeds")


def issue(env: Environment, raw: RawRecords, account: Account, request: GrantRequest,
          modeler: dict[str, Any], mcm: dict[str, Any] | None, *, now: dt.datetime) -> Grant:
    """Claim the account, write its records and rotate its password; undo the claim on failure."""
    store = env.record_store()
    before = claim(store, account.name, request)
    try:
        write_template_records(store, raw, account.name, modeler, mcm)
        password = rotate(env, store, account.name, now)
    except (errors.ClientError, RotationError, RecordConflict) as err:
        log.error("grant failed, undoing the claim: %s", err, extra={"account": account.name})
        try:
            give_back(store, account.name, before, request)
        except (errors.ClientError, RecordConflict) as undo_err:
            raise CommandError(
                f"{account.name}: the grant failed ({err}) and undoing it failed too "
                f"({undo_err}); its password record still names {request.owner}: set its "
                "period back by hand") from err
        raise CommandError(f"{account.name}: the grant failed and was undone: {err}") from err
    return Grant(account.name, account.password.username, password, request,
                 str(modeler["site"]), str(mcm["site"]) if mcm else None)


def claim(store: RecordStore, account: str, request: GrantRequest) -> dict[str, Any]:
    """Write the owner and period if the record is still free; return the fields before.

    Raises RecordConflict when another writer granted the account since it was read.
    """
    before: dict[str, Any] = {}

    def change(data: dict[str, Any]) -> dict[str, Any]:
        try:
            record = PasswordRecord.model_validate(data)
        except ValidationError:
            raise RecordConflict(account, "its password record became invalid since it was "
                                 "read") from None
        if not is_grantable_record(record):
            raise RecordConflict(account, f"it was granted meanwhile to {record.owner} "
                                 f"({record.start_date} ~ {record.end_date})")
        before.clear()
        before.update(data)
        unreleased = {key: value for key, value in data.items() if key != "released_at"}
        return {**unreleased, **request.period_fields()}

    store.update(f"password/{account}", change)
    return before


def give_back(store: RecordStore, account: str, before: dict[str, Any],
              request: GrantRequest) -> None:
    """Restore the period fields of `before` if the record still contains this grant's claim."""
    claimed = request.period_fields()

    def change(data: dict[str, Any]) -> dict[str, Any]:
        if any(iso_text(data.get(key)) != value for key, value in claimed.items()):
            raise RecordConflict(account, "its password record changed after the claim")
        restored = {key: value for key, value in data.items() if key not in PERIOD_FIELDS}
        restored.update({key: before[key] for key in PERIOD_FIELDS if key in before})
        return restored

    store.update(f"password/{account}", change)


def write_template_records(store: RecordStore, raw: RawRecords, account: str,
                           modeler: dict[str, Any], mcm: dict[str, Any] | None) -> None:
    """Write the modeler and mcm records; fields the template does not set are kept.

    Without an mcm section an earlier user's mcm record loses its clusters, so the mcm job
    starts none for the new user.
    """
    for folder, record in (("modeler", modeler), ("mcm", mcm)):
        path = f"{folder}/{account}"
        exists = account in raw.get(folder, {})
        if record is None:
            if exists:
                store.update(path, lambda data: {**data, "clusters": []})
            continue
        if exists:
            store.update(path, _merge_with(record))
        else:
            create_record(store, path, record)


def _merge_with(fields: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda data: {**data, **fields}


def rotate(env: Environment, store: RecordStore, account: str, now: dt.datetime) -> str:
    """Set a new password in CloudZ and the record (rpa.passwords); return the stored one."""
    policy = PasswordPolicy.from_settings(env.settings)
    rotate_password(store, env.cloudz(), account, now=now,
                    generate=lambda: generate_password(policy))
    return str(store.read(f"password/{account}").data["password"])


# Output and --apply-now.

def print_grant(grant: Grant, lang: Lang) -> None:
    """Print the login details: the one place where a password is shown."""
    request = grant.request
    lines = [
        text("trial.granted", lang, account=grant.account),
        text("trial.granted.owner", lang, owner=request.owner, email=request.email),
        text("trial.granted.purpose", lang, purpose=text(f"purpose.{request.purpose}", lang),
             template=request.template),
        text("trial.granted.period", lang, start=request.start, end=request.end),
        text("trial.granted.username", lang, username=grant.username),
        text("trial.granted.password", lang, password=grant.password),
        text("trial.granted.modeler", lang, site=grant.modeler_site),
    ]
    if grant.mcm_site:
        lines.append(text("trial.granted.mcm", lang, site=grant.mcm_site))
    print("\n".join(lines))


def grant_json(grant: Grant) -> dict[str, Any]:
    request = grant.request
    return {"account": grant.account, "username": grant.username, "password": grant.password,
            "owner": request.owner, "email": request.email, "purpose": request.purpose,
            "template": request.template, "start_date": request.start.isoformat(),
            "end_date": request.end.isoformat(), "modeler_site": grant.modeler_site,
            "mcm_site": grant.mcm_site}


def apply_now(grant: Grant, settings: Settings, options: RunOptions, today: dt.date
              ) -> list[dict[str, Any]]:
    """Run the modeler and mcm jobs for the granted account, as their CronJobs would.

    Returns each job's exit status, with its JSON report in JSON output. In text output the
    jobs print their own reports.
    """
    from rpa.job import execute
    from rpa.mcm import McmJob
    from rpa.modeler import ModelerJob

    if grant.request.start > today:
        if options.output == "text":
            print(text("trial.apply_later", options.lang, start=grant.request.start))
        return []
    job_options = RunOptions(now=options.now, accounts=(grant.account,),
                             inventory_path=options.inventory_path, sandbox=options.sandbox,
                             output=options.output, lang=options.lang)
    results: list[dict[str, Any]] = []
    for job in (ModelerJob(), McmJob()):
        if options.output == "text":
            print()
            results.append({"job": job.name, "exit_status": execute(job, job_options,
                                                                     settings)})
            continue
        captured = io.StringIO()
        with redirect_stdout(captured):
            status = execute(job, job_options, settings)
        results.append({"job": job.name, "exit_status": status,
                        "report": json.loads(captured.getvalue() or "null")})
    return results


# Extend and revoke.

def run_extend(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=False)
    today = today_in_service_zone(options.now)
    with open_command_environment(settings, options, writes=True) as env:
        _, inventory = read_inventory(env)
        record = require_period(inventory, args.account, "extend")
        assert record.start_date is not None and record.end_date is not None
        if args.until < record.start_date or args.until < today:
            raise CommandError(
                f"--until {args.until} is before the period's start {record.start_date} or "
                f"before today {today}; to end the period now use rpa trial revoke",
                status=EXIT_USAGE)
        if args.until != record.end_date:
            update_period(env.record_store(), args.account, record,
                          {"end_date": args.until.isoformat()})
    key = "trial.extended" if args.until != record.end_date else "trial.unchanged"
    print_change(options, key, account=args.account, old=record.end_date, new=args.until)
    return EXIT_OK


def run_revoke(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, now=args.at, read_only=False)
    yesterday = today_in_service_zone(options.now) - ONE_DAY
    with open_command_environment(settings, options, writes=True) as env:
        _, inventory = read_inventory(env)
        record = require_period(inventory, args.account, "revoke")
        assert record.start_date is not None and record.end_date is not None
        if record.end_date > yesterday:
            # The user knows the password set at the grant, so the release must rotate it.
            # The end-of-service job skips the rotation when rotated_at is after end_date,
            # which a grant and a revoke on the same day would cause; rotated_at goes.
            update_period(env.record_store(), args.account, record, {
                "start_date": min(record.start_date, yesterday).isoformat(),
                "end_date": yesterday.isoformat(), "rotated_at": None})
            print_change(options, "trial.revoked", account=args.account, old=record.end_date,
                         new=yesterday)
        else:
            print_change(options, "trial.already_ended", account=args.account,
                         old=record.end_date, new=record.end_date)
    if not args.release_now:
        return EXIT_OK
    return release_now(args.account, settings, options)


def require_period(inventory: Inventory, account: str, command: str) -> PasswordRecord:
    """Return the password record of an account whose period is not released yet."""
    found = inventory.accounts.get(account)
    if found is None:
        invalid = any(error.account == account for error in inventory.errors)
        raise CommandError(f"{account}: its records are invalid; see rpa inventory validate"
                           if invalid else f"{account}: no records for this account")
    record = found.password
    if record.start_date is None or record.is_released():
        raise CommandError(f"{account} is not granted (free or released): nothing to "
                           f"{command}; use rpa trial grant")
    return record


def update_period(store: RecordStore, account: str, seen: PasswordRecord,
                  fields: dict[str, Any]) -> None:
    """Set `fields` (None removes one) if the period is still the one that was read.

    Raises RecordConflict when another writer changed the period or released the account.
    """
    def change(data: dict[str, Any]) -> dict[str, Any]:
        try:
            current = PasswordRecord.model_validate(data)
        except ValidationError:
            raise RecordConflict(account, "its password record became invalid since it was "
                                 "read") from None
        if (current.start_date, current.end_date) != (seen.start_date, seen.end_date) \
                or current.is_released():
            raise RecordConflict(account, f"its period changed to {current.start_date} ~ "
                                 f"{current.end_date} since it was read")
        kept = {key: value for key, value in data.items()
                if key not in fields or fields[key] is not None}
        kept.update({key: value for key, value in fields.items() if value is not None})
        return kept

    store.update(f"password/{account}", change)


def print_change(options: RunOptions, key: str, *, account: str, old: dt.date,
                 new: dt.date) -> None:
    if options.output == "json":
        print(json.dumps({"account": account, "end_date_before": old.isoformat(),
                          "end_date": new.isoformat(), "changed": old != new}))
    else:
        print(text(key, options.lang, account=account, old=old, new=new))


def release_now(account: str, settings: Settings, options: RunOptions) -> int:
    """Run the end-of-service job for the account now, without the grace days."""
    from rpa.endsvc import EndsvcJob
    from rpa.job import execute

    if options.output == "text":
        print()
    job_options = RunOptions(now=options.now, accounts=(account,),
                             inventory_path=options.inventory_path, sandbox=options.sandbox,
                             output=options.output, lang=options.lang)
    return execute(EndsvcJob(), job_options, settings.model_copy(update={"grace_days": 0}))
