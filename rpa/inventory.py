"""The account records: their models, their validation, and where they are read from.

Each pooled account has up to three records, kept in Vault KV v2 under one folder each
(`password/<account>`, `modeler/<account>`, `mcm/<account>`) or in an inventory file with the
same three top-level keys. `validate_records` turns the raw records into `Account` objects and
a list of `RecordError`s. An account with any invalid record is left out whole, so every job
skips it and reconciles the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rpa.clients.errors import ClientError
from rpa.clients.vault import VaultClient
from rpa.parallel import map_bounded, read_all
from rpa.schedule import Schedule

FOLDERS = ("password", "modeler", "mcm")
SERVICE_ZONE = ZoneInfo("Asia/Seoul")
ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
# Field names whose values are never shown, not even in a validation error.
SECRET_FIELDS = frozenset({"password", "pending_password"})
# Values in error reports are cut to this length so a huge field cannot flood the output.
ERROR_VALUE_MAX_CHARS = 60

# libyaml's loader parses an inventory of hundreds of accounts about ten times faster than the
# pure-Python one; both are safe loaders.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_site(url: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ValueError(f"{url!r} is not an http(s) base URL")
    return url.rstrip("/")


SiteUrl = Annotated[str, AfterValidator(_check_site)]


class PasswordRecord(Record):
    """Login and usage period; `start_date` and `end_date` are absent on a free account."""

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    owner: str | None = Field(None, max_length=200)
    purpose: Literal["trial", "education", "demo"] | None = None
    # Calendar dates in Asia/Seoul; end_date is the last day of use.
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    released_at: AwareDatetime | None = None
    rotated_at: AwareDatetime | None = None
    pending_password: SecretStr | None = None
    note: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _check_period(self) -> PasswordRecord:
        if (self.start_date is None) != (self.end_date is None):
            raise ValueError("start_date and end_date must be given together")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    def is_in_period(self, today: dt.date) -> bool:
        if self.start_date is None or self.end_date is None:
            return False
        return self.start_date <= today <= self.end_date

    def is_released(self) -> bool:
        """True when this period was released: `released_at` is on or after its end date.

        A record renewed with a later period after a release counts as not released again.
        """
        if self.released_at is None or self.end_date is None:
            return False
        return self.released_at.astimezone(SERVICE_ZONE).date() >= self.end_date


class Project(Record):
    """A Modeler project and its resources (cpu in cores, memory and storage in GiB)."""

    name: Name
    cpu: int = Field(ge=1, le=256)
    memory_gib: int = Field(ge=1, le=4096)
    gpu: int = Field(0, ge=0, le=16)
    storage_gib: int = Field(ge=1, le=65536)

    def resources(self) -> dict[str, int]:
        return {
            "cpu": self.cpu,
            "memory_gib": self.memory_gib,
            "gpu": self.gpu,
            "storage_gib": self.storage_gib,
        }


class GroupSize(Record):
    """Worker-node Auto Scaling group of an account and its sizes in and out of core time."""

    name: str = Field(min_length=1, max_length=255)
    core_desired: int = Field(ge=0)
    off_desired: int = Field(0, ge=0)
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> GroupSize:
        # Auto Scaling rejects a desired capacity outside [min, max]; moto does not, so the
        # check happens here, before any call.
        for label, desired in (("core_desired", self.core_desired),
                               ("off_desired", self.off_desired)):
            if not self.min <= desired <= self.max:
                raise ValueError(
                    f"{label} {desired} is outside min {self.min} .. max {self.max}"
                )
        return self


def bucket_name_problem(name: str) -> str | None:
    """Return why `name` breaks S3's bucket naming rules, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return f"bucket name {name!r} must be 3 to 63 characters long"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name):
        return (f"bucket name {name!r} may contain only lower-case letters, digits, '.' and "
                "'-', and must start and end with a letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        return f"bucket name {name!r} must not have '..', '.-' or '-.'"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return f"bucket name {name!r} must not look like an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return f"bucket name {name!r} must not start with {prefix!r}"
    for suffix in ("-s3alias", "--ol-s3", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return f"bucket name {name!r} must not end with {suffix!r}"
    return None


def _check_bucket(name: str | None) -> str | None:
    if name is not None and (problem := bucket_name_problem(name)):
        raise ValueError(problem)
    return name


class StorageSpec(Record):
    """The account's S3 bucket and IAM identity; absent names come from the settings."""

    bucket: Annotated[str | None, AfterValidator(_check_bucket)] = None
    versioning: bool = False
    iam_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")


class ModelerRecord(Record):
    site: SiteUrl
    schedule: Schedule
    projects: list[Project] = []
    autoscaling_group: GroupSize | None = None
    storage: StorageSpec = StorageSpec()

    @field_validator("projects")
    @classmethod
    def _unique_projects(cls, projects: list[Project]) -> list[Project]:
        names = [project.name for project in projects]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"project names must be unique, repeated: {', '.join(duplicates)}")
        return projects


class ClusterSpec(Record):
    """An EMR cluster that an account keeps in core time."""

    name: Name
    release_label: str = Field(pattern=r"^emr-\d+\.\d+\.\d+$")
    applications: list[Annotated[str, Field(min_length=1, max_length=64)]] = ["Spark"]
    master_instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    core_instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    core_count: int = Field(ge=1, le=50)
    market: Literal["SPOT", "ON_DEMAND"] = "SPOT"
    keep_alive: bool = False


class McmRecord(Record):
    site: SiteUrl
    schedule: Schedule
    clusters: list[ClusterSpec] = []


@dataclass(frozen=True)
class Account:
    """One pooled account with its validated records."""

    name: str
    password: PasswordRecord
    modeler: ModelerRecord | None = None
    mcm: McmRecord | None = None

    def is_in_period(self, today: dt.date) -> bool:
        return self.password.is_in_period(today)


@dataclass(frozen=True)
class RecordError:
    """One problem with one record: which account and field, the value shown, and why."""

    account: str
    field: str
    value: str
    reason: str

    def __post_init__(self) -> None:
        # Every part may carry text from a record, and each is printed, logged and posted.
        for name in ("account", "field", "value", "reason"):
            object.__setattr__(self, name, printable(getattr(self, name)))

    def message(self) -> str:
        return f"{self.reason} (value: {self.value})" if self.value else self.reason


# Unicode categories that error reports show as escapes. They are controls (NUL, ESC,
# newlines), format characters (right-to-left overrides, zero-width marks), lone surrogates
# (which UTF-8 cannot encode), private use, unassigned code points, and line and paragraph
# separators.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """Return `text` with the characters of HIDDEN_CATEGORIES written as escapes (\\u202e).

    They would otherwise reorder or hide the output around them, or fail to encode.
    """
    if all(unicodedata.category(char) not in HIDDEN_CATEGORIES for char in text):
        return text
    return "".join(char if unicodedata.category(char) not in HIDDEN_CATEGORIES
                   else char.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for char in text)


@dataclass(frozen=True)
class Inventory:
    """Valid accounts by name, the problems found, and whether every record could be read."""

    accounts: Mapping[str, Account]
    errors: list[RecordError] = field(default_factory=list)
    # False when a record could not be read or validated: jobs then delete nothing, because
    # a partial view of the records must never count as "not wanted".
    complete: bool = True

    def select(self, names: list[str] | None) -> Inventory:
        """Keep only the named accounts (all when `names` is empty); unknown names are errors."""
        if not names:
            return self
        unknown = [
            RecordError(name, "account", name, "no records for this account")
            for name in names
            if name not in self.accounts and not any(e.account == name for e in self.errors)
        ]
        errors = [e for e in self.errors if e.account in names] + unknown
        accounts = {name: acc for name, acc in self.accounts.items() if name in names}
        return Inventory(accounts, errors, complete=not errors)


RawRecords = dict[str, dict[str, Any]]
"""Raw records by folder, then by account name."""


class InventoryFileError(Exception):
    """The inventory file cannot be read or does not have the expected top-level shape."""


def load_file(path: Path) -> RawRecords:
    """Read an inventory file (JSON or YAML) with top-level keys password, modeler and mcm."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InventoryFileError(f"cannot read inventory {path}: {err.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=YAML_LOADER)
    except (ValueError, yaml.YAMLError) as err:
        raise InventoryFileError(f"inventory {path} is not valid JSON or YAML: {err}") from None
    if not isinstance(data, dict):
        raise InventoryFileError(f"inventory {path} must be a mapping with keys {FOLDERS}")
    unknown = sorted(set(data) - set(FOLDERS))
    if unknown:
        raise InventoryFileError(
            f"inventory {path} has unknown top-level keys {unknown}; expected {list(FOLDERS)}"
        )
    raw: RawRecords = {}
    for folder in FOLDERS:
        records = data.get(folder) or {}
        if not isinstance(records, dict):
            raise InventoryFileError(f"inventory {path}: {folder!r} must map account names "
                                     "to records")
        raw[folder] = {str(name): record for name, record in records.items()}
    return raw


def validate_records(raw: RawRecords, *, read_errors: list[RecordError] | None = None
                     ) -> Inventory:
    """Validate every account's records; `read_errors` are accounts that could not be read."""
    errors = list(read_errors or [])
    unreadable = {error.account for error in errors}
    accounts: dict[str, Account] = {}
    names = sorted({name for folder in FOLDERS for name in raw.get(folder, {})} | unreadable)
    for name in names:
        if name in unreadable:
            continue
        account, problems = _validate_account(name, raw)
        errors.extend(problems)
        if account is not None:
            accounts[name] = account
    return Inventory(accounts, errors, complete=not errors)


def _validate_account(name: str, raw: RawRecords) -> tuple[Account | None, list[RecordError]]:
    # fullmatch, because "$" also matches before a final newline.
    if not ACCOUNT_NAME.fullmatch(name):
        # The name is cut like a value, since only a valid name is at most 64 characters.
        return None, [RecordError(_show(name), "account", _show(name), "invalid account "
                                  "name: use lower-case letters, digits, '_', '.' or '-'")]
    if name not in raw.get("password", {}):
        return None, [RecordError(name, "password", "", "record missing: every account needs "
                                  "a password record with its usage period")]
    models: dict[str, Any] = {}
    problems: list[RecordError] = []
    for folder, model in (("password", PasswordRecord), ("modeler", ModelerRecord),
                          ("mcm", McmRecord)):
        record = raw.get(folder, {}).get(name)
        if record is None:
            continue
        if not isinstance(record, dict):
            problems.append(RecordError(name, folder, _show(record), "record must be a mapping"))
            continue
        try:
            models[folder] = model.model_validate(record)
        except ValidationError as err:
            problems.extend(_record_errors(name, folder, err))
    if problems:
        return None, problems
    return Account(name, models["password"], models.get("modeler"), models.get("mcm")), []


def _record_errors(account: str, folder: str, err: ValidationError) -> list[RecordError]:
    problems = []
    for item in err.errors(include_url=False):
        path = folder
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        secret = any(part in SECRET_FIELDS for part in item["loc"])
        value = "***" if secret else _show(item.get("input"))
        # A model-level check reports its whole record as input; showing it adds nothing.
        if item["type"] == "value_error" and isinstance(item.get("input"), dict):
            value = ""
        problems.append(RecordError(account, path, value, _reason(item)))
    return problems


def _reason(item: Mapping[str, Any]) -> str:
    message = str(item["msg"])
    return message.removeprefix("Value error, ")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > ERROR_VALUE_MAX_CHARS:
        return text[:ERROR_VALUE_MAX_CHARS] + "…"
    return text


def today_in_service_zone(now: dt.datetime) -> dt.date:
    """Return the calendar date in Asia/Seoul, in which usage periods are written."""
    return now.astimezone(SERVICE_ZONE).date()


class RecordSource:
    """Source of the records, a file or Vault; both return raw records and read errors."""

    def __init__(self, *, path: Path | None = None, vault: VaultClient | None = None) -> None:
        if (path is None) == (vault is None):
            raise ValueError("give exactly one of path and vault")
        self.path = path
        self.vault = vault

    def describe(self) -> str:
        if self.vault is not None:
            return f"Vault {self.vault.addr} mount {self.vault.mount}"
        return f"inventory file {self.path}"

    def read(self) -> tuple[RawRecords, list[RecordError]]:
        if self.path is not None:
            return load_file(self.path), []
        assert self.vault is not None
        return read_vault(self.vault)


class EmptyMountError(Exception):
    """The Vault mount lists no account at all, which means a wrong mount or path setting."""


def read_vault(vault: VaultClient) -> tuple[RawRecords, list[RecordError]]:
    """List each folder, then read every record; a record that cannot be read is an error.

    Vault has no call that reads many secrets, so the records are read one per call,
    `vault.read_workers` at a time (RPA_CONCURRENCY), and kept in the order listed.
    Raises EmptyMountError when the password folder lists nothing, because a run with zero
    accounts almost always means RPA_VAULT_KV_MOUNT points at the wrong place.
    """
    raw: RawRecords = {folder: {} for folder in FOLDERS}
    read_errors: list[RecordError] = []
    listed = dict(zip(FOLDERS, map_bounded(vault.list_names, FOLDERS,
                                           workers=vault.read_workers), strict=True))
    if not listed["password"]:
        raise EmptyMountError(
            f"Vault mount {vault.mount!r} at {vault.addr} lists no records under password/; "
            "check RPA_VAULT_KV_MOUNT and the Vault policy"
        )
    paths = [(folder, name) for folder, names in listed.items() for name in names]
    reads = [functools.partial(vault.read, f"{folder}/{name}") for folder, name in paths]
    for (folder, name), secret in zip(paths, read_all(reads, workers=vault.read_workers),
                                      strict=True):
        if isinstance(secret, ClientError):
            read_errors.append(RecordError(name, folder, "", f"cannot read record: {secret}"))
        else:
            raw[folder][name] = secret.data
    return raw, read_errors
