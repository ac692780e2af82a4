"""Validation of the account records: every kind of bad field is reported, never raised."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from rpa.inventory import (
    InventoryFileError,
    RawRecords,
    load_file,
    today_in_service_zone,
    validate_records,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"


@pytest.fixture(scope="module")
def example_raw() -> RawRecords:
    return load_file(EXAMPLES)


def test_examples_are_valid(example_raw: RawRecords) -> None:
    inventory = validate_records(example_raw)
    assert inventory.errors == []
    assert inventory.complete
    assert len(inventory.accounts) == 45
    assert sorted(inventory.accounts)[0] == "trial_user01"
    assert sorted(inventory.accounts)[-1] == "trial_user45"


def _set(raw: RawRecords, path: str, value: Any) -> None:
    """Set a field by a dotted path such as `modeler.trial_user03.projects.0.cpu`."""
    parts = path.split(".")
    target: Any = raw
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def test_five_bad_fields_reported_exactly(example_raw: RawRecords) -> None:
    raw = copy.deepcopy(example_raw)
    _set(raw, "password.trial_user02.end_date", "2027-02-30")       # a date that does not exist
    _set(raw, "modeler.trial_user03.schedule.start", "25:00")       # hour 25
    _set(raw, "modeler.trial_user04.schedule.days", "MON-FRII")     # a misspelt day
    _set(raw, "modeler.trial_user06.projects.0.cpu", -2)            # a negative cpu
    _set(raw, "mcm.trial_user08.clusters.0.market", "RESERVED")     # an unknown market

    inventory = validate_records(raw)

    reported = sorted((error.account, error.field) for error in inventory.errors)
    assert reported == [
        ("trial_user02", "password.end_date"),
        ("trial_user03", "modeler.schedule.start"),
        ("trial_user04", "modeler.schedule.days"),
        ("trial_user06", "modeler.projects[0].cpu"),
        ("trial_user08", "mcm.clusters[0].market"),
    ]
    assert len(inventory.accounts) == 40
    assert not inventory.complete


@pytest.mark.parametrize(("path", "value", "field", "value_shown"), [
    # usage period
    ("password.trial_user01.start_date", "2026-13-01", "password.start_date", "2026-13-01"),
    ("password.trial_user01.end_date", "2026-01-01", "password", ""),  # before start_date
    ("password.trial_user01.purpose", "party", "password.purpose", "party"),
    ("password.trial_user01.email", "not-an-email", "password.email", "not-an-email"),
    ("password.trial_user01.extra_field", 1, "password.extra_field", "1"),  # a typo of a field
    # projects
    ("modeler.trial_user01.projects.0.cpu", "four", "modeler.projects[0].cpu", "four"),
    ("modeler.trial_user01.projects.0.memory_gib", 0, "modeler.projects[0].memory_gib", "0"),
    ("modeler.trial_user01.projects.0.name", "bad name!", "modeler.projects[0].name",
     "bad name!"),
    ("modeler.trial_user01.site", "ftp://x", "modeler.site", "ftp://x"),
    # Auto Scaling sizes: desired outside [min, max]
    ("modeler.trial_user01.autoscaling_group.core_desired", 9, "modeler.autoscaling_group", ""),
    ("modeler.trial_user01.autoscaling_group.min", -1, "modeler.autoscaling_group.min", "-1"),
    # schedule
    ("modeler.trial_user01.schedule.end", "18:60", "modeler.schedule.end", "18:60"),
    ("modeler.trial_user01.schedule.timezone", "Mars/Base", "modeler.schedule.timezone",
     "Mars/Base"),
    ("modeler.trial_user01.schedule.holidays", "XX", "modeler.schedule.holidays", "XX"),
    # clusters
    ("mcm.trial_user02.clusters.0.core_count", 0, "mcm.clusters[0].core_count", "0"),
    ("mcm.trial_user02.clusters.0.release_label", "7.2", "mcm.clusters[0].release_label", "7.2"),
    ("mcm.trial_user02.clusters.0.core_instance_type", "huge", "mcm.clusters[0]"
     ".core_instance_type", "huge"),
])
def test_bad_field_reported(example_raw: RawRecords, path: str, value: Any, field: str,
                            value_shown: str) -> None:
    raw = copy.deepcopy(example_raw)
    _set(raw, path, value)
    account = path.split(".")[1]

    inventory = validate_records(raw)

    assert [(e.account, e.field) for e in inventory.errors] == [(account, field)]
    assert inventory.errors[0].value == value_shown
    assert inventory.errors[0].reason
    assert account not in inventory.accounts
    assert len(inventory.accounts) == 44


def test_password_value_masked(example_raw: RawRecords) -> None:
    raw = copy.deepcopy(example_raw)
    raw["password"]["trial_user01"]["password"] = ["Secret-In-A-List-1!"]

    inventory = validate_records(raw)

    assert inventory.errors[0].field == "password.password"
    assert inventory.errors[0].value == "***"
    assert "Secret-In-A-List" not in repr(inventory.errors)


def test_duplicate_project_names(example_raw: RawRecords) -> None:
    raw = copy.deepcopy(example_raw)
    projects = raw["modeler"]["trial_user06"]["projects"]
    projects.append(dict(projects[0]))

    inventory = validate_records(raw)

    assert [e.field for e in inventory.errors] == ["modeler.projects"]
    assert projects[0]["name"] in inventory.errors[0].reason


def test_record_without_password_record(example_raw: RawRecords) -> None:
    raw = copy.deepcopy(example_raw)
    raw["modeler"]["trial_user99"] = raw["modeler"]["trial_user01"]

    inventory = validate_records(raw)

    assert [(e.account, e.field) for e in inventory.errors] == [("trial_user99", "password")]


def test_long_value_cut(example_raw: RawRecords) -> None:
    raw = copy.deepcopy(example_raw)
    raw["password"]["trial_user01"]["purpose"] = "x" * 5000

    error = validate_records(raw).errors[0]

    assert len(error.value) <= 61
    assert error.value.endswith("…")


def test_select_limits_errors_to_named(example_raw: RawRecords) -> None:
    raw = copy.deepcopy(example_raw)
    _set(raw, "modeler.trial_user03.schedule.start", "25:00")

    selected = validate_records(raw).select(["trial_user01", "trial_user50"])

    assert list(selected.accounts) == ["trial_user01"]
    assert [(e.account, e.field) for e in selected.errors] == [("trial_user50", "account")]


def test_period_in_seoul_dates(example_raw: RawRecords) -> None:
    account = validate_records(example_raw).accounts["trial_user31"]
    start = account.password.start_date
    assert start is not None
    # 15:00 UTC the day before is already `start` in Asia/Seoul (UTC+9).
    before_midnight_utc = dt.datetime.combine(start, dt.time(15, 0), dt.UTC) - dt.timedelta(days=1)
    assert today_in_service_zone(before_midnight_utc) == start
    assert account.is_in_period(today_in_service_zone(before_midnight_utc))
    assert not account.is_in_period(start - dt.timedelta(days=1))


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "must be a mapping"),
    ("password: {}\nprojects: {}\n", "unknown top-level keys"),
    ("password: [1]\n", "must map account names"),
    ("password: {a: [\n", "not valid JSON or YAML"),
])
def test_bad_inventory_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryFileError, match=message):
        load_file(path)


def test_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryFileError, match="cannot read inventory"):
        load_file(tmp_path / "absent.yaml")


def test_json_inventory(tmp_path: Path, example_raw: RawRecords) -> None:
    import json

    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(example_raw, default=str), encoding="utf-8")
    assert len(validate_records(load_file(path)).accounts) == 45


def test_korean_owner_kept(example_raw: RawRecords) -> None:
    owner = validate_records(example_raw).accounts["trial_user01"].password.owner
    assert owner == yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))["password"][
        "trial_user01"]["owner"]
    assert owner is not None and "(" in owner
