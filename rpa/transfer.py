"""Moving records in and out in the inventory format: `rpa inventory export|import`.

Export writes every record as read, invalid ones too. The password fields are masked as
`***` unless `--include-secrets` is given, and then the file is created with mode 0600.

Import validates the file first: the records it brings, laid over the current ones, must
all be valid, or nothing is written and every problem is listed. Then it shows what differs
from the current records per record and field (a password only as "changed") and writes
the changed records only, each with check-and-set. A password field given as `***` keeps
the current value, so a masked export can be edited and imported again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rpa.admin import (
    MASK,
    CommandError,
    RecordConflict,
    add_common_options,
    command_options,
    mask_secrets,
    open_command_environment,
    print_record_errors,
    run_command,
)
from rpa.clients import errors
from rpa.i18n import Lang, text
from rpa.inventory import (
    FOLDERS,
    SECRET_FIELDS,
    RawRecords,
    RecordError,
    load_file,
    validate_records,
)
from rpa.records import RecordStore, create_record
from rpa.report import EXIT_FAILED, EXIT_OK
from rpa.settings import Settings

log = logging.getLogger(__name__)

# Mode of an export that contains passwords: readable by its owner only.
SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


def add_commands(inventory_commands: Any) -> None:
    """Add `export` and `import` to the subcommands of `rpa inventory`."""
    export = inventory_commands.add_parser(
        "export", help="write every record in the inventory format, passwords masked")
    export.add_argument("--include-secrets", action="store_true",
                        help="write the passwords too (the file gets mode 0600)")
    export.add_argument("--output", dest="file", type=Path, default=None, metavar="FILE",
                        help="write to FILE (JSON when it ends in .json, else YAML); "
                             "default: standard output")
    add_common_options(export, output=False)
    export.set_defaults(handler=lambda args: run_command(
        "inventory", args, lambda settings: run_export(args, settings)))
    load = inventory_commands.add_parser(
        "import", help="write the changed records of an inventory file, after checking all")
    load.add_argument("file", type=Path, metavar="FILE")
    load.add_argument("--dry-run", action="store_true",
                      help="show the differences and write nothing")
    add_common_options(load)
    load.set_defaults(handler=lambda args: run_command(
        "inventory", args, lambda settings: run_import(args, settings)))


# Export.

def run_export(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=True)
    with open_command_environment(settings, options, writes=False) as env:
        raw, read_errors = env.records.read()
        source = env.records.describe()
    records = raw if args.include_secrets else mask_records(raw)
    exported_at = options.now.isoformat(timespec="seconds")
    secrets_note = ("included: keep this file private" if args.include_secrets
                    else f"masked as {MASK}")
    header = f"# Records exported from {source} at {exported_at}; passwords {secrets_note}.\n"
    if args.file is None:
        sys.stdout.write(render_records(records, header, as_json=False))
    else:
        as_json = args.file.suffix == ".json"
        write_private(args.file, render_records(records, header, as_json=as_json),
                      SECRET_FILE_MODE if args.include_secrets else PUBLIC_FILE_MODE)
        print(text("export.written", options.lang, file=args.file,
                   count=sum(len(records[folder]) for folder in FOLDERS)))
    for error in read_errors:
        print(f"error: {error.account} {error.field}: {error.reason}", file=sys.stderr)
    return EXIT_FAILED if read_errors else EXIT_OK


def mask_records(raw: RawRecords) -> RawRecords:
    return {folder: {name: mask_secrets(record) if isinstance(record, dict) else record
                     for name, record in raw.get(folder, {}).items()}
            for folder in FOLDERS}


def render_records(records: RawRecords, header: str, *, as_json: bool) -> str:
    ordered = {folder: dict(sorted(records.get(folder, {}).items())) for folder in FOLDERS}
    if as_json:
        return json.dumps(ordered, ensure_ascii=False, indent=2, default=str) + "\n"
    return header + yaml.safe_dump(ordered, allow_unicode=True, sort_keys=False)


def write_private(path: Path, content: str, mode: int) -> None:
    """Write `content` atomically; the file never exists with a wider mode than `mode`."""
    # mkstemp creates the file with mode 0600, so secrets are never readable by others even
    # before the chmod; a public export then widens it.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            output.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# Import.

@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any

    @property
    def is_secret(self) -> bool:
        return self.field in SECRET_FIELDS


@dataclass(frozen=True)
class RecordChange:
    """The differences of one record of the file from the current one; `current` None when new."""

    folder: str
    account: str
    current: dict[str, Any] | None
    imported: dict[str, Any]
    fields: list[FieldChange] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.account}"


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    options = command_options(args, settings, read_only=args.dry_run)
    incoming = normalise(load_file(args.file))
    with open_command_environment(settings, options, writes=not args.dry_run) as env:
        current, read_errors = env.records.read()
        if read_errors:
            print_record_errors(read_errors, options.lang)
            raise CommandError("some current records cannot be read, so the differences "
                               "would be wrong; nothing was written")
        imported, problems = unmask(incoming, current)
        problems += check_result(imported, current)
        if problems:
            print_record_errors(problems, options.lang)
            raise CommandError(f"{args.file}: {len(problems)} invalid fields; nothing was "
                               "written", status=EXIT_FAILED)
        changes = [change for change in diff_records(imported, current) if change.fields]
        print_changes(changes, imported, options.lang, dry_run=args.dry_run)
        if args.dry_run:
            return EXIT_OK
        conflicts = write_changes(env.record_store(), changes)
    for conflict in conflicts:
        print(f"error: conflict: {conflict}", file=sys.stderr)
    print(text("import.written", options.lang, written=len(changes) - len(conflicts),
               conflicts=len(conflicts)))
    return EXIT_FAILED if conflicts else EXIT_OK


def normalise(raw: RawRecords) -> RawRecords:
    """Turn YAML dates and times into the ISO texts that Vault stores, so equal values compare
    equal."""
    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(key): convert(item) for key, item in value.items()}
        if isinstance(value, list):
            return [convert(item) for item in value]
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        return value

    converted: RawRecords = convert(raw)
    return converted


def unmask(incoming: RawRecords, current: RawRecords) -> tuple[RawRecords, list[RecordError]]:
    """Replace `***` password fields with the current values; a new record cannot keep one."""
    problems = []
    imported: RawRecords = {folder: {} for folder in FOLDERS}
    for folder in FOLDERS:
        for name, record in incoming.get(folder, {}).items():
            if not isinstance(record, dict):
                imported[folder][name] = record
                continue
            existing = current.get(folder, {}).get(name) or {}
            filled = dict(record)
            for key in SECRET_FIELDS & set(record):
                if record[key] != MASK:
                    continue
                if key in existing:
                    filled[key] = existing[key]
                else:
                    problems.append(RecordError(name, f"{folder}.{key}", MASK,
                                                "masked, but there is no current value to keep"))
            imported[folder][name] = filled
    return imported, problems


def check_result(imported: RawRecords, current: RawRecords) -> list[RecordError]:
    """Validate the records of the file's accounts as they would be after the import."""
    accounts = {name for folder in FOLDERS for name in imported.get(folder, {})}
    result: RawRecords = {folder: {**{name: record for name, record in current.get(folder, {})
                                      .items() if name in accounts},
                                   **imported.get(folder, {})}
                          for folder in FOLDERS}
    return validate_records(result).errors


def diff_records(imported: RawRecords, current: RawRecords) -> list[RecordChange]:
    """Compare each record of the file with the current one, field by field."""
    changes = []
    for folder in FOLDERS:
        for name, record in sorted(imported.get(folder, {}).items()):
            before = current.get(folder, {}).get(name)
            keys = sorted(set(record) | set(before or {}))
            fields = [FieldChange(key, (before or {}).get(key), record.get(key))
                      for key in keys if before is None or before.get(key) != record.get(key)]
            changes.append(RecordChange(folder, name, before, record, fields))
    return changes


def print_changes(changes: list[RecordChange], imported: RawRecords, lang: Lang, *,
                  dry_run: bool) -> None:
    total = sum(len(records) for records in imported.values())
    print(text("import.title.dry_run" if dry_run else "import.title", lang,
               changed=len(changes), total=total))
    for change in changes:
        kind = "import.new" if change.current is None else "import.changed"
        print(f"  {change.path}: {text(kind, lang)}")
        for item in change.fields:
            print(f"    {item.field}: {describe_field(item, lang)}")


def describe_field(item: FieldChange, lang: Lang) -> str:
    """Describe the old and new value of one field; a password only as set, changed or removed."""
    if item.is_secret:
        if item.before is None:
            return text("import.secret.set", lang)
        if item.after is None:
            return text("import.secret.removed", lang)
        return text("import.secret.changed", lang)
    return f"{_show(item.before)} → {_show(item.after)}"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def write_changes(store: RecordStore, changes: list[RecordChange]) -> list[RecordConflict]:
    """Write each changed record with check-and-set; a conflict is kept and the rest go on."""
    conflicts = []
    for change in changes:
        try:
            if change.current is None:
                create_record(store, change.path, change.imported)
            else:
                store.update(change.path, _patch(change))
            log.info("imported %s: fields %s", change.path,
                     sorted(item.field for item in change.fields),
                     extra={"account": change.account})
        except RecordConflict as conflict:
            conflicts.append(conflict)
        except errors.Conflict as err:
            conflicts.append(RecordConflict(change.account, str(err)))
    return conflicts


def _patch(change: RecordChange) -> Any:
    """Build a change function that sets the file's fields if each still has the value compared."""
    assert change.current is not None

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        moved = [item.field for item in change.fields
                 if data.get(item.field) != item.before]
        if moved:
            raise RecordConflict(change.account, f"{change.path} fields {moved} changed since "
                                 "they were read")
        patched = {key: value for key, value in data.items()
                   if not any(item.field == key and item.after is None for item in change.fields)}
        patched.update({item.field: item.after for item in change.fields
                        if item.after is not None})
        return patched

    return apply
