"""The `rpa` command and the shared options of every job entrypoint.

`rpa modeler …` and `python -m rpa.modeler …` take the same options. Exit status: 0 when
everything was done, 1 when an account failed or was invalid (the others were still done),
2 for bad usage or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rpa.i18n import Lang
from rpa.inventory import InventoryFileError, validate_records
from rpa.job import Job, RunOptions, execute
from rpa.report import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rpa.settings import Settings, SettingsError, load_settings, unknown_variables
from rpa.shard import Shard, ShardError, parse_shard, shard_from_environment


def parse_now(value: str) -> dt.datetime:
    """Parse --now; a value without an offset is rejected so a run never guesses the zone."""
    try:
        now = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --now {value!r}: use ISO 8601 with an offset, e.g. 2026-12-07T10:00+09:00"
        ) from None
    if now.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"--now {value!r} has no UTC offset: add one, e.g. {value}+09:00")
    return now


def parse_shard_option(value: str) -> Shard:
    """Parse --shard INDEX/COUNT; argparse turns the error into exit status 2."""
    try:
        return parse_shard(value)
    except ShardError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_job_options(parser: argparse.ArgumentParser, job: Job | None = None, *,
                    plan_options: bool = True) -> None:
    """Add the options of the job commands.

    `plan_options=False` leaves out the deletion and concurrency options, which only the
    jobs that apply a plan use.
    """
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and change nothing")
    parser.add_argument("--now", type=parse_now, default=None,
                        help="plan as of this instant (ISO 8601 with offset); default: now")
    parser.add_argument("--account", action="append", default=[], metavar="NAME",
                        help="limit the run to this account (repeatable)")
    parser.add_argument("--inventory", type=Path, metavar="PATH",
                        help="read the records from this JSON or YAML file instead of Vault")
    parser.add_argument("--sandbox", action="store_true",
                        help="run against the local stand-ins (rpa sandbox up, or a "
                             "temporary one for this run)")
    parser.add_argument("--output", choices=["text", "json"], default="text",
                        help="text for people (default) or one JSON document")
    parser.add_argument("--lang", choices=["ko", "en"], default=None,
                        help="language of the text output (default: RPA_LANG or ko)")
    if not plan_options:
        return
    parser.add_argument("--max-deletes", type=int, default=None, metavar="N",
                        help="most deletions one run may apply (default: RPA_MAX_DELETES, 10)")
    parser.add_argument("--allow-mass-delete", action="store_true",
                        help="apply deletions even when they exceed --max-deletes")
    parser.add_argument("--concurrency", type=int, default=None, metavar="N",
                        help="accounts applied at once (default: RPA_CONCURRENCY, 8)")
    parser.add_argument("--shard", type=parse_shard_option, default=None,
                        metavar="INDEX/COUNT",
                        help="reconcile only the accounts of this shard, e.g. 0/4 (default: "
                             "JOB_COMPLETION_INDEX of RPA_SHARD_COUNT, or all accounts)")
    extra = getattr(job, "add_options", None)
    if extra is not None:
        extra(parser)


def run_program(main: Callable[[], int]) -> int:
    """Run `main` as the whole process and return its exit status, for `raise SystemExit`.

    The objects made so far (the modules) and those `main` leaves behind (botocore's service
    models, the records) live until the process ends. Frozen, they are left out of the
    garbage collector's full collections: those of the run, and the one the interpreter
    runs on its way out, which would otherwise walk all of them (0.13 s on 2 cores).
    """
    gc.freeze()
    status = main()
    gc.freeze()
    return status


def run_job_command(job: Job, argv: Sequence[str] | None) -> int:
    """Parse the job options and run the job; the entrypoint of `python -m rpa.<job>`."""
    parser = argparse.ArgumentParser(prog=f"python -m rpa.{job.name}",
                                     description=f"Run the {job.name} job once.")
    add_job_options(parser, job)
    args = parser.parse_args(argv)
    return run_job(job, args)


def run_job(job: Job, args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    for name in ("lang", "max_deletes", "concurrency", "grace_days"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    settings = _settings_or_none(overrides)
    if settings is None:
        return EXIT_USAGE
    try:
        shard = getattr(args, "shard", None) or shard_from_environment(os.environ,
                                                                       settings.shard_count)
    except ShardError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(
        now=args.now or dt.datetime.now(dt.UTC),
        dry_run=args.dry_run,
        accounts=tuple(args.account),
        inventory_path=args.inventory,
        sandbox=args.sandbox,
        output=args.output,
        lang=settings.lang,
        allow_mass_delete=args.allow_mass_delete,
        shard=shard,
    )
    return execute(job, options, settings)


def _settings_or_none(overrides: dict[str, Any]) -> Settings | None:
    for warning in unknown_variables(os.environ):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        return load_settings(**overrides)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return None


# rpa inventory validate

def validate_inventory(args: argparse.Namespace) -> int:
    from rpa.environment import EnvironmentError, record_source

    settings = _settings_or_none({"lang": args.lang} if args.lang else {})
    if settings is None:
        return EXIT_USAGE
    options = RunOptions(now=dt.datetime.now(dt.UTC), inventory_path=args.inventory)
    try:
        source = record_source(settings, options)
        raw, read_errors = source.read()
    except (EnvironmentError, InventoryFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    inventory = validate_records(raw, read_errors=read_errors)
    _print_validation(inventory.errors, len(inventory.accounts), source.describe(),
                      args.output, settings.lang)
    return EXIT_FAILED if inventory.errors else EXIT_OK


def _print_validation(errors: Sequence[Any], valid: int, source: str, output: str,
                      lang: Lang) -> None:
    if output == "json":
        print(json.dumps({
            "source": source, "valid_accounts": valid,
            "errors": [{"account": e.account, "field": e.field, "value": e.value,
                        "reason": e.reason} for e in errors],
        }, ensure_ascii=False, indent=2))
        return
    if lang == "ko":
        print(f"{source}: 유효한 계정 {valid}개, 오류 {len(errors)}건")
    else:
        print(f"{source}: {valid} valid accounts, {len(errors)} errors")
    for error in errors:
        value = f" = {error.value}" if error.value else ""
        print(f"  {error.account}  {error.field}{value}: {error.reason}")


# rpa sandbox up | down | status

def sandbox_command(args: argparse.Namespace) -> int:
    from rpa.sandbox import runtime

    folder = args.dir or Path(os.environ.get("RPA_SANDBOX_DIR", ".rpa-sandbox"))
    if args.sandbox_command == "up":
        try:
            endpoints = runtime.up(folder)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_FAILED
        print(f"sandbox up in {folder}: platform {endpoints.platform_url}, "
              f"AWS {endpoints.aws_url}, database {endpoints.db_url}")
        return EXIT_OK
    if args.sandbox_command == "down":
        stopped = runtime.down(folder)
        print(f"sandbox in {folder} stopped" if stopped else f"no sandbox was up in {folder}")
        return EXIT_OK
    running = runtime.read_running(folder)
    if running is None:
        print(f"no sandbox is up in {folder}")
        return EXIT_FAILED
    print(json.dumps(running.__dict__, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from rpa import noti, savings, transfer, trial
    from rpa.endsvc import EndsvcJob
    from rpa.mcm import McmJob
    from rpa.modeler import ModelerJob

    parser = argparse.ArgumentParser(prog="rpa", description="Accuinsight+ trial account "
                                     "automation.")
    commands = parser.add_subparsers(dest="command", required=True)

    jobs: tuple[Job, ...] = (ModelerJob(), McmJob(), EndsvcJob())
    for job in jobs:
        job_parser = commands.add_parser(job.name, help=f"run the {job.name} job once")
        add_job_options(job_parser, job)
        job_parser.set_defaults(handler=lambda args, job=job: run_job(job, args))

    noti_parser = commands.add_parser("noti", help="post the daily report of the accounts "
                                      "to Slack")
    noti.add_options(noti_parser)
    noti_parser.set_defaults(handler=noti.run_noti)

    inventory = commands.add_parser("inventory", help="work with the account records")
    inventory_commands = inventory.add_subparsers(dest="inventory_command", required=True)
    validate = inventory_commands.add_parser(
        "validate", help="list every invalid record; exit 1 if there is any")
    validate.add_argument("--inventory", type=Path, metavar="PATH",
                          help="a JSON or YAML file instead of Vault")
    validate.add_argument("--output", choices=["text", "json"], default="text")
    validate.add_argument("--lang", choices=["ko", "en"], default=None)
    validate.set_defaults(handler=validate_inventory)
    transfer.add_commands(inventory_commands)
    trial.add_commands(commands)
    savings.add_commands(commands)

    sandbox = commands.add_parser("sandbox", help="local stand-ins of the platform and AWS")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    for name, text in (("up", "start the stand-ins in the background"),
                       ("down", "stop them and drop their state"),
                       ("status", "print the endpoints of the running stand-ins")):
        command = sandbox_commands.add_parser(name, help=text)
        command.add_argument("--dir", type=Path, default=None,
                             help="state folder (default: RPA_SANDBOX_DIR or ./.rpa-sandbox)")
        command.set_defaults(handler=sandbox_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    raise SystemExit(run_program(main))
