"""`rpa report savings`: node hours under the schedules against around the clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import holidays
import pytest
import yaml

from rpa.cli import main
from rpa.inventory import Account, validate_records
from rpa.savings import account_savings, report_range

MARCH_FIRST = dt.date(2026, 3, 1)
MARCH_LAST = dt.date(2026, 3, 31)
# March 2026 in Asia/Seoul: 31 days, 744 hours. 22 weekdays, less Monday 2026-03-02, the
# substitute holiday for Independence Movement Day (Sunday 2026-03-01): 21 working days of
# 9 hours (09:00-18:00), 189 core hours. Without the holiday it would be 198.
MARCH_HOURS = 31 * 24
MARCH_CORE_HOURS = 21 * 9
WEEKDAYS = {"days": "MON-FRI", "start": "09:00", "end": "18:00", "timezone": "Asia/Seoul",
            "holidays": "KR"}


def records(*, start: str = "2026-02-15", end: str = "2026-04-15", core_desired: int = 2,
            off_desired: int = 0, keep_alive: bool = False) -> dict[str, Any]:
    return {
        "password": {"user_a": {"username": "user_a", "password": "pw-Example-1!",
                                "start_date": start, "end_date": end}},
        "modeler": {"user_a": {
            "site": "https://modeler.example", "schedule": WEEKDAYS,
            "autoscaling_group": {"name": "workers-a", "core_desired": core_desired,
                                  "off_desired": off_desired, "min": 0, "max": 4}}},
        "mcm": {"user_a": {"site": "https://mcm.example", "schedule": WEEKDAYS, "clusters": [
            {"name": "spark", "release_label": "emr-7.2.0",
             "master_instance_type": "m5.xlarge", "core_instance_type": "m5.xlarge",
             "core_count": 2, "keep_alive": keep_alive}]}},
    }


def account(**changes: Any) -> Account:
    inventory = validate_records(records(**changes))
    assert inventory.errors == []
    return inventory.accounts["user_a"]


def test_march_2026_has_substitute_holiday() -> None:
    korean = holidays.country_holidays("KR", years=2026)
    weekdays = [MARCH_FIRST + dt.timedelta(days=n) for n in range(31)
                if (MARCH_FIRST + dt.timedelta(days=n)).weekday() < 5]
    assert dt.date(2026, 3, 2) in korean
    assert len(weekdays) == 22
    assert len([day for day in weekdays if day not in korean]) * 9 == MARCH_CORE_HOURS == 189


def test_march_weekday_schedule() -> None:
    savings = account_savings(account(), MARCH_FIRST, MARCH_LAST)

    assert savings is not None
    assert savings.days == 31
    # Worker nodes: 2 nodes x 189 core hours, against 2 x 744.
    assert savings.workers.scheduled == 2 * MARCH_CORE_HOURS == 378
    assert savings.workers.around_the_clock == 2 * MARCH_HOURS == 1488
    assert savings.workers.saved == 1110
    # EMR: 1 master + 2 core nodes x 189 core hours, against 3 x 744.
    assert savings.emr.scheduled == 3 * MARCH_CORE_HOURS == 567
    assert savings.emr.around_the_clock == 3 * MARCH_HOURS == 2232
    assert savings.emr.saved == 1665


def test_period_limits_days() -> None:
    # 2026-03-10 (Tue) to 2026-03-20 (Fri): 11 days, 9 weekdays, no holiday.
    savings = account_savings(account(start="2026-03-10", end="2026-03-20"), MARCH_FIRST,
                              MARCH_LAST)

    assert savings is not None
    assert (savings.first, savings.last, savings.days) == (dt.date(2026, 3, 10),
                                                           dt.date(2026, 3, 20), 11)
    assert savings.workers.scheduled == 2 * 9 * 9
    assert savings.workers.around_the_clock == 2 * 11 * 24


def test_period_outside_range() -> None:
    assert account_savings(account(start="2026-04-01", end="2026-04-30"), MARCH_FIRST,
                           MARCH_LAST) is None


@pytest.mark.parametrize(("changes", "workers", "emr"), [
    # off_desired nodes run outside core time: 2 x 189 + 1 x (744 - 189)
    ({"off_desired": 1}, 2 * 189 + 555, 3 * 189),
    # a keep_alive cluster runs around the clock and saves nothing
    ({"keep_alive": True}, 2 * 189, 3 * 744),
    # no worker nodes in core time
    ({"core_desired": 0}, 0, 3 * 189),
])
def test_scheduled_hours(changes: dict[str, Any], workers: int, emr: int) -> None:
    savings = account_savings(account(**changes), MARCH_FIRST, MARCH_LAST)

    assert savings is not None
    assert savings.workers.scheduled == workers
    assert savings.emr.scheduled == emr


def test_default_range_previous_month() -> None:
    assert report_range(None, None, dt.date(2026, 4, 10)) == (MARCH_FIRST, MARCH_LAST)
    assert report_range(None, None, dt.date(2026, 1, 1)) == (dt.date(2025, 12, 1),
                                                             dt.date(2025, 12, 31))


# Through the CLI.

@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    raw = records()
    raw["password"]["user_b"] = {"username": "user_b", "password": "pw-Example-2!"}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_cli_json_with_prices(inventory: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_PRICE_WORKER_NODE_HOUR", "0.25")
    monkeypatch.setenv("RPA_PRICE_EMR_NODE_HOUR", "0.3")

    status = main(["report", "savings", "--inventory", str(inventory), "--from", "2026-03-01",
                   "--to", "2026-03-31", "--output", "json"])
    document = json.loads(capsys.readouterr().out)

    assert status == 0
    # The free account user_b has no period, so only user_a counts.
    assert [row["account"] for row in document["accounts"]] == ["user_a"]
    assert document["total"]["worker_node_hours"] == {
        "scheduled": 378.0, "around_the_clock": 1488.0, "saved": 1110.0}
    assert document["total"]["emr_node_hours"]["saved"] == 1665.0
    # 1110 x 0.25 + 1665 x 0.3
    assert document["total"]["cost_saved"] == pytest.approx(777.0)


def test_cli_text_without_prices(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["report", "savings", "--inventory", str(inventory), "--from", "2026-03-01",
                   "--to", "2026-03-31"])
    out = capsys.readouterr().out

    row = next(line for line in out.splitlines() if line.startswith("user_a"))
    assert status == 0
    assert "스케줄 절감 보고 2026-03-01 ~ 2026-03-31" in out
    assert "378 / 1,488 / 1,110" in row
    assert "567 / 2,232 / 1,665" in row
    assert row.endswith("-")
    assert "RPA_PRICE_WORKER_NODE_HOUR" in out


def test_cli_range_reversed(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["report", "savings", "--inventory", str(inventory), "--from", "2026-03-31",
                   "--to", "2026-03-01"])

    assert status == 2
    assert "before --from" in capsys.readouterr().err
