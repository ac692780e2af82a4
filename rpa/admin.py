"""Plumbing shared by the admin commands: `rpa trial …`, `rpa inventory export|import` and
`rpa report savings`.

Admin commands read and write the account records and leave the platform to the jobs. Like
rpa.noti they do not fit `rpa.job.execute`, which exists to apply a plan, so they reuse its
pieces instead: `RunOptions`, `open_environment`, `validate_records`, the logging setup and
the exit statuses (0 done, 1 failed or conflict, 2 usage or settings).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rpa.clients import errors
from rpa.environment import Environment, EnvironmentError, open_environment
from rpa.i18n import Lang, text
from rpa.inventory import (
    SECRET_FIELDS,
    EmptyMountError,
    Inventory,
    InventoryFileError,
    RawRecords,
    RecordError,
    validate_records,
)
from rpa.job import RunOptions
from rpa.logs import setup_logging
from rpa.report import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rpa.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)

# Shown in place of a password or a pending password.
MASK = "***"


class CommandError(Exception):
    """The command cannot go on; `status` is its exit status (1 failed, 2 usage)."""

    def __init__(self, message: str, *, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


class RecordConflict(Exception):
    """Another writer changed a record between the read and the write; nothing was overwritten."""

    def __init__(self, account: str, message: str) -> None:
        super().__init__(f"{account}: {message}")
        self.account = account


# Options.

def add_common_options(parser: argparse.ArgumentParser, *, now: bool = True,
                       output: bool = True) -> None:
    """Add --inventory, --sandbox and --lang, and unless left out --now and --output."""
    from rpa.cli import parse_now

    parser.add_argument("--inventory", type=Path, metavar="PATH",
                        help="read the records from this JSON or YAML file instead of Vault")
    parser.add_argument("--sandbox", action="store_true",
                        help="use the local stand-ins and the sandbox's copy of the records")
    parser.add_argument("--lang", choices=["ko", "en"], default=None,
                        help="language of the text output (default: RPA_LANG or ko)")
    if now:
        parser.add_argument("--now", type=parse_now, default=None, metavar="INSTANT",
                            help="act as of this instant (ISO 8601 with offset); default: now")
    if output:
        parser.add_argument("--output", choices=["text", "json"], default="text",
                            help="text for people (default) or one JSON document")


def load_command_settings(args: argparse.Namespace) -> Settings:
    """Read the settings with --lang applied; raises CommandError (exit 2) when invalid."""
    try:
        return load_settings(**({"lang": args.lang} if getattr(args, "lang", None) else {}))
    except SettingsError as err:
        raise CommandError(str(err), status=EXIT_USAGE) from None


def command_options(args: argparse.Namespace, settings: Settings, *,
                    now: dt.datetime | None = None, read_only: bool) -> RunOptions:
    """Build the run options of an admin command; `read_only` keeps database migrations off."""
    return RunOptions(
        now=now or getattr(args, "now", None) or dt.datetime.now(dt.UTC),
        dry_run=read_only,
        inventory_path=args.inventory,
        sandbox=args.sandbox,
        output=getattr(args, "output", "text"),
        lang=settings.lang,
    )


# Running a command.

def run_command(name: str, settings_args: argparse.Namespace,
                body: Callable[[Settings], int]) -> int:
    """Run one admin command and map its failures to exit statuses and one stderr line."""
    try:
        settings = load_command_settings(settings_args)
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.status
    setup_logging(job=name, run_id=uuid.uuid4().hex[:12], dry_run=False,
                  level=settings.log_level, fmt=settings.log_format)
    try:
        return body(settings)
    except CommandError as err:
        return fail(str(err), err.status)
    except RecordConflict as err:
        return fail(f"conflict: {err}; nothing of it was overwritten, read the record again "
                    "and retry", EXIT_FAILED)
    except (EnvironmentError, EmptyMountError, InventoryFileError) as err:
        return fail(str(err), EXIT_USAGE)
    except errors.ClientError as err:
        return fail(str(err), EXIT_FAILED)


def fail(message: str, status: int) -> int:
    log.error("%s", message)
    print(f"error: {message}", file=sys.stderr)
    return status


@contextmanager
def open_command_environment(settings: Settings, options: RunOptions, *,
                             writes: bool) -> Iterator[Environment]:
    """Open the environment of a command; a writing sandbox command needs `rpa sandbox up`.

    A temporary sandbox would drop the records and the CloudZ passwords it changed when the
    command ends, so a write there would only look as if it had worked.
    """
    if writes and options.sandbox and options.inventory_path is None:
        from rpa.sandbox.runtime import read_running

        if read_running(settings.sandbox_dir) is None:
            raise CommandError(
                f"no sandbox is up in {settings.sandbox_dir}: run `rpa sandbox up` first, "
                "because a temporary sandbox drops what this command writes", status=EXIT_USAGE)
    with open_environment(settings, options) as env:
        yield env


def read_inventory(env: Environment) -> tuple[RawRecords, Inventory]:
    """Read and validate every record; invalid records are logged, not fatal."""
    raw, read_errors = env.records.read()
    inventory = validate_records(raw, read_errors=read_errors)
    for error in inventory.errors:
        log.warning("invalid record %s: %s", error.field, error.message(),
                    extra={"account": error.account})
    return raw, inventory


# Text output.

def print_record_errors(record_errors: Sequence[RecordError], lang: Lang) -> None:
    """Print every invalid record with its account, field, value and reason."""
    print(text("admin.invalid_records", lang, count=len(record_errors)))
    for error in record_errors:
        value = f" = {error.value}" if error.value else ""
        print(f"  {error.account}  {error.field}{value}: {error.reason}")


def display_width(value: str) -> int:
    """Columns a terminal gives `value`: two for wide characters such as Hangul."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lay out rows in columns padded to the widest cell, counting wide characters as two."""
    widths = [max(display_width(row[index]) for row in [header, *rows])
              for index in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell + " " * (widths[index] - display_width(cell))
                 for index, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def exit_status(failed: bool) -> int:
    return EXIT_FAILED if failed else EXIT_OK


def mask_secrets(record: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `record` with the password fields shown as `***`."""
    return {key: MASK if key in SECRET_FIELDS and value is not None else value
            for key, value in record.items()}


def iso_text(value: Any) -> str:
    """Format a date field as Vault stores it (YYYY-MM-DD), quoted in the file or not."""
    return value.isoformat() if isinstance(value, dt.date) else str(value)
