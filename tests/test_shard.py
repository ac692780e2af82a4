"""Tests of the shard split: stable, disjoint, covering and even, and how a run selects one."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rpa.cli import main
from rpa.inventory import Inventory, RecordError, load_file, validate_records
from rpa.sandbox.runtime import Servers
from rpa.shard import (
    INDEX_VARIABLE,
    Shard,
    ShardError,
    parse_shard,
    select_shard,
    shard_from_environment,
    shard_index,
)

NAMES = [f"trial_user{number:04d}" for number in range(1, 1001)]
CORE = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


# The split.

@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 10])
def test_shards_disjoint_and_covering(count: int) -> None:
    shards = [Shard(index, count) for index in range(count)]
    owners = [[shard for shard in shards if shard.owns(name)] for name in NAMES]
    assert all(len(owned) == 1 for owned in owners)


@pytest.mark.parametrize("count", [2, 4, 8, 10])
def test_shards_roughly_even(count: int) -> None:
    sizes = Counter(shard_index(name, count) for name in NAMES)
    expected = len(NAMES) / count
    assert set(sizes) == set(range(count))
    assert min(sizes.values()) >= 0.75 * expected
    assert max(sizes.values()) <= 1.25 * expected


def test_shard_index_pinned() -> None:
    """The split must not change between versions: pods of one run may run different ones."""
    assert {name: shard_index(name, 4) for name in ("trial_user01", "trial_user04",
                                                    "trial_user06", "trial_user08")} == {
        "trial_user01": 2, "trial_user04": 1, "trial_user06": 1, "trial_user08": 2}


@pytest.mark.parametrize("seed", ["0", "1", "12345"])
def test_shard_index_same_in_other_processes(seed: str) -> None:
    """Another process, with another str hash seed, splits the same way."""
    script = ("import json, sys; from rpa.shard import shard_index; "
              "print(json.dumps([shard_index(name, 7) for name in json.load(sys.stdin)]))")
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(NAMES[:200]),
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": seed})
    assert json.loads(result.stdout) == [shard_index(name, 7) for name in NAMES[:200]]


def test_one_shard_owns_everything() -> None:
    assert all(Shard(0, 1).owns(name) for name in NAMES)


# Parsing and the environment.

@pytest.mark.parametrize(("text", "expected"), [
    ("0/4", Shard(0, 4)),
    ("3/4", Shard(3, 4)),
    (" 1 / 2 ", Shard(1, 2)),
    ("0/1", Shard(0, 1)),
])
def test_parse_shard(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["4/4", "5/4", "-1/4", "1/0", "0/0", "a/b", "1", "", "1/2/3",
                                  "1.0/2"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ShardError):
        parse_shard(text)


def test_environment_without_count_is_not_split() -> None:
    assert shard_from_environment({}, 1) is None
    assert shard_from_environment({INDEX_VARIABLE: "0"}, 1) is None


def test_environment_gives_index() -> None:
    assert shard_from_environment({INDEX_VARIABLE: "2"}, 3) == Shard(2, 3)


@pytest.mark.parametrize(("environ", "count", "message"), [
    ({}, 4, "JOB_COMPLETION_INDEX is not set"),
    ({INDEX_VARIABLE: "4"}, 4, "RPA_SHARD_COUNT is 4"),
    ({INDEX_VARIABLE: "1"}, 1, "RPA_SHARD_COUNT is 1"),
    ({INDEX_VARIABLE: "x"}, 4, "expected a whole number"),
    ({INDEX_VARIABLE: "-1"}, 4, "expected a whole number"),
])
def test_environment_rejects(environ: dict[str, str], count: int, message: str) -> None:
    with pytest.raises(ShardError, match=message):
        shard_from_environment(environ, count)


# The command line.

@pytest.mark.parametrize("value", ["4/4", "x", "1/0", "2"])
def test_shard_option_invalid_exits_2(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["modeler", "--dry-run", "--shard", value])
    assert exited.value.code == 2
    assert "--shard" in capsys.readouterr().err


@pytest.mark.parametrize(("environ", "message"), [
    ({"RPA_SHARD_COUNT": "4"}, "JOB_COMPLETION_INDEX is not set"),
    ({"RPA_SHARD_COUNT": "4", INDEX_VARIABLE: "4"}, "RPA_SHARD_COUNT is 4"),
    ({INDEX_VARIABLE: "2"}, "RPA_SHARD_COUNT is 1"),
])
def test_shard_environment_invalid_exits_2(environ: dict[str, str], message: str,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["modeler", "--dry-run", "--sandbox"]) == 2
    assert message in capsys.readouterr().err


# Selecting a shard of the records.

def test_select_shard_keeps_own_accounts_and_errors() -> None:
    raw = load_file(example_path())
    raw["password"]["broken_account"] = {"username": "broken_account"}
    inventory = validate_records(raw)
    selected = [select_shard(inventory, Shard(index, 3)) for index in range(3)]

    assert not inventory.complete
    names = [set(part.accounts) for part in selected]
    assert set().union(*names) == set(inventory.accounts)
    assert sum(len(part) for part in names) == len(inventory.accounts)
    errors = [error.account for part in selected for error in part.errors]
    assert sorted(errors) == sorted(error.account for error in inventory.errors)
    # An invalid record withholds deletions in every shard, as in a run that is not split.
    assert [part.complete for part in selected] == [False, False, False]


def test_select_shard_of_complete_records_is_complete() -> None:
    inventory = Inventory({}, [RecordError("a", "password", "", "x")], complete=True)
    assert select_shard(inventory, Shard(0, 2)).complete is True


def example_path() -> Path:
    from rpa.environment import example_inventory

    return example_inventory()


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status = main(["modeler", "--sandbox", "--output", "json", "--now", CORE.isoformat(),
                   *args])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == 0
    return report


def test_shards_plan_only_their_accounts(sandbox: Servers,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    whole = run_json(capsys, "--dry-run")
    listings = sandbox.platform.calls
    parts = []
    for index in range(3):
        sandbox.platform.reset_calls()
        parts.append(run_json(capsys, "--dry-run", "--shard", f"{index}/3"))
        # Every pod reads the site-wide listings once, as a run that is not split does.
        assert sandbox.platform.calls == listings

    accounts = [{item["account"] for item in part["accounts"]} for part in parts]
    assert set().union(*accounts) == {item["account"] for item in whole["accounts"]}
    assert sum(len(names) for names in accounts) == len(whole["accounts"])
    for index, part in enumerate(parts):
        assert {action["account"] for action in part["actions"]} <= accounts[index]
        assert all(Shard(index, 3).owns(name) for name in accounts[index])
    planned = sorted((a["account"], a["kind"], a["target"]) for part in parts
                     for a in part["actions"])
    assert planned == sorted((a["account"], a["kind"], a["target"]) for a in whole["actions"])
