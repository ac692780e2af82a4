"""Tests for the core-time schedule in rpa.schedule."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rpa.schedule import Schedule

UTC = dt.UTC
SEOUL = "Asia/Seoul"
NEW_YORK = "America/New_York"

# A week in March 2026 that contains no South Korean holiday: Monday 9th to Sunday 15th.
WEEK = {
    "MON": "2026-03-09",
    "TUE": "2026-03-10",
    "WED": "2026-03-11",
    "THU": "2026-03-12",
    "FRI": "2026-03-13",
    "SAT": "2026-03-14",
    "SUN": "2026-03-15",
}


def make(days: str | list[str], start: str, end: str, **extra: Any) -> Schedule:
    return Schedule.model_validate({"days": days, "start": start, "end": end, **extra})


def local(text: str, zone: str = SEOUL) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- is_active: boundaries and overnight windows ---------------------------------------------


@pytest.mark.parametrize(
    ("days", "start", "end", "at", "expected"),
    [
        # One minute before opening.
        ("MON-FRI", "09:00", "18:00", "2026-03-09 08:59", False),
        # The start is inclusive.
        ("MON-FRI", "09:00", "18:00", "2026-03-09 09:00", True),
        # The last second before closing is still inside.
        ("MON-FRI", "09:00", "18:00", "2026-03-09 17:59:59", True),
        # The end is exclusive.
        ("MON-FRI", "09:00", "18:00", "2026-03-09 18:00", False),
        # Saturday is not in MON-FRI.
        ("MON-FRI", "09:00", "18:00", "2026-03-14 12:00", False),
        # 24:00 keeps Friday's window open until the last second of the day.
        ("MON-FRI", "20:00", "24:00", "2026-03-13 23:59:59", True),
        # 24:00 closes at midnight, and Saturday owns no window.
        ("MON-FRI", "20:00", "24:00", "2026-03-14 00:00", False),
        # Monday's 24:00 end is Tuesday 00:00, which is outside Tuesday's 20:00 window.
        ("MON-FRI", "20:00", "24:00", "2026-03-10 00:00", False),
        # A whole-day window opens at Monday midnight.
        ("MON", "00:00", "24:00", "2026-03-09 00:00", True),
        # A whole-day window is closed on the following midnight.
        ("MON", "00:00", "24:00", "2026-03-10 00:00", False),
        # Sunday's last minute is outside a Monday-only schedule.
        ("MON", "00:00", "24:00", "2026-03-08 23:59", False),
    ],
)
def test_is_active_boundaries(days: str, start: str, end: str, at: str, expected: bool) -> None:
    assert make(days, start, end).is_active(local(at)) is expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Monday 03:00 belongs to Sunday evening, and Sunday is off.
        ("2026-03-09 03:00", False),
        # Monday's window opens at 22:00.
        ("2026-03-09 22:00", True),
        # Tuesday 05:59 is still Monday's window.
        ("2026-03-10 05:59", True),
        # Monday's window closes at Tuesday 06:00.
        ("2026-03-10 06:00", False),
        # Tuesday daytime is between windows.
        ("2026-03-10 12:00", False),
        # Friday's window opens at 22:00.
        ("2026-03-13 23:00", True),
        # Saturday 03:00 belongs to Friday evening, which qualifies.
        ("2026-03-14 03:00", True),
        # Friday's window closes at Saturday 06:00.
        ("2026-03-14 06:00", False),
        # Saturday evening owns no window.
        ("2026-03-14 22:00", False),
        # Sunday 03:00 belongs to Saturday evening, which is off.
        ("2026-03-15 03:00", False),
    ],
)
def test_is_active_overnight_window(at: str, expected: bool) -> None:
    schedule = make("MON-FRI", "22:00", "06:00")
    assert schedule.is_active(local(at)) is expected


def test_transitions_overnight_week() -> None:
    schedule = make("MON-FRI", "22:00", "06:00")
    expected: list[tuple[dt.datetime, bool]] = []
    for opening, closing in pairwise(["MON", "TUE", "WED", "THU", "FRI", "SAT"]):
        expected.append((local(f"{WEEK[opening]} 22:00").astimezone(UTC), True))
        expected.append((local(f"{WEEK[closing]} 06:00").astimezone(UTC), False))

    found = schedule.transitions(local("2026-03-09 00:00"), local("2026-03-16 00:00"))

    assert found == expected
    assert all(instant.utcoffset() == dt.timedelta(0) for instant, _ in found)


def test_transitions_include_window_running_at_start() -> None:
    # Tuesday 03:00 is inside Monday's overnight window, so the first change is its close.
    schedule = make("MON-FRI", "22:00", "06:00")
    found = schedule.transitions(local("2026-03-10 03:00"), local("2026-03-10 23:00"))
    assert found == [(utc("2026-03-09 21:00"), False), (utc("2026-03-10 13:00"), True)]


def test_transitions_at_range_start() -> None:
    # A window opening exactly at the range start is a change inside [start, end).
    schedule = make("MON-FRI", "09:00", "18:00")
    found = schedule.transitions(local("2026-03-09 09:00"), local("2026-03-09 18:00"))
    assert found == [(utc("2026-03-09 00:00"), True)]


# --- days: ranges, single days and lists -------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "weekday", "expected_on"),
    [
        # FRI-MON wraps over the weekend: Friday, Saturday, Sunday and Monday.
        ("FRI-MON", "FRI", True),
        ("FRI-MON", "SAT", True),
        ("FRI-MON", "SUN", True),
        ("FRI-MON", "MON", True),
        # The days between Monday and Friday are outside FRI-MON.
        ("FRI-MON", "TUE", False),
        ("FRI-MON", "WED", False),
        ("FRI-MON", "THU", False),
        # SUN-THU wraps from Sunday through Thursday.
        ("SUN-THU", "SUN", True),
        ("SUN-THU", "MON", True),
        ("SUN-THU", "THU", True),
        # Friday and Saturday are outside SUN-THU.
        ("SUN-THU", "FRI", False),
        ("SUN-THU", "SAT", False),
        # A lower-case range is accepted.
        ("sat-sun", "SUN", True),
        ("sat-sun", "FRI", False),
        # A single day qualifies alone.
        ("WED", "WED", True),
        ("WED", "TUE", False),
        ("WED", "THU", False),
        # A list names each day, in any case.
        (["MON", "wed"], "MON", True),
        (["MON", "wed"], "WED", True),
        (["MON", "wed"], "TUE", False),
    ],
)
def test_days_select_weekdays(days: str | list[str], weekday: str, expected_on: bool) -> None:
    schedule = make(days, "09:00", "18:00")
    day = dt.date.fromisoformat(WEEK[weekday])

    assert schedule.is_off_day(day) is not expected_on
    assert schedule.is_active(local(f"{WEEK[weekday]} 12:00")) is expected_on
    assert (schedule.window_on(day) is not None) is expected_on


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # Ranges and names are upper-cased, and the range shape is kept.
        ("mon-fri", "MON-FRI"),
        # Spaces around range parts are dropped.
        (" fri - mon ", "FRI-MON"),
        # A single day is upper-cased.
        ("wed", "WED"),
        # A list stays a list.
        (["mon", "Thu"], ["MON", "THU"]),
    ],
)
def test_days_are_normalised(days: str | list[str], expected: str | list[str]) -> None:
    assert make(days, "09:00", "18:00").days == expected


# --- local dates versus UTC dates --------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "at", "expected"),
    [
        # Sunday 23:30 UTC is Monday 08:30 in Seoul, so a weekday schedule is on.
        ("MON-FRI", "2026-03-08 23:30", True),
        # The same instant is not Sunday in Seoul, so a Sunday schedule is off.
        ("SUN", "2026-03-08 23:30", False),
        # Saturday 23:30 UTC is Sunday 08:30 in Seoul.
        ("SUN", "2026-03-07 23:30", True),
        # Friday 23:30 UTC is already Saturday 08:30 in Seoul.
        ("MON-FRI", "2026-03-13 23:30", False),
    ],
)
def test_is_active_judges_local_date(days: str, at: str, expected: bool) -> None:
    schedule = make(days, "08:00", "10:00", timezone=SEOUL)
    assert schedule.is_active(utc(at)) is expected


def test_transitions_on_utc_sunday() -> None:
    # Monday 08:00 in Seoul is Sunday 23:00 UTC, so a UTC Sunday contains Monday's opening.
    schedule = make("MON-FRI", "08:00", "10:00", timezone=SEOUL)
    found = schedule.transitions(utc("2026-03-08 00:00"), utc("2026-03-09 00:00"))
    assert found == [(utc("2026-03-08 23:00"), True)]


# --- daylight-saving changes in New York ------------------------------------------------------
# In 2026 New York skips 02:00-03:00 on 8 March (EST -5 to EDT -4, at 07:00 UTC) and
# repeats 01:00-02:00 on 1 November (EDT -4 to EST -5, at 06:00 UTC).


@pytest.mark.parametrize(
    ("start", "end", "range_start", "range_end", "expected"),
    [
        # A start inside the gap takes effect at the gap's end, 03:00 EDT.
        (
            "02:30",
            "05:00",
            "2026-03-08 00:00",
            "2026-03-09 00:00",
            [("07:00", True), ("09:00", False)],
        ),
        # The day before the change runs 02:30-05:00 EST.
        (
            "02:30",
            "05:00",
            "2026-03-07 00:00",
            "2026-03-08 00:00",
            [("07:30", True), ("10:00", False)],
        ),
        # The day after the change runs 02:30-05:00 EDT.
        (
            "02:30",
            "05:00",
            "2026-03-09 00:00",
            "2026-03-10 00:00",
            [("06:30", True), ("09:00", False)],
        ),
        # An end inside the gap also moves to the gap's end.
        (
            "01:00",
            "02:30",
            "2026-03-08 00:00",
            "2026-03-09 00:00",
            [("06:00", True), ("07:00", False)],
        ),
        # A window wholly inside the gap vanishes without any change.
        ("02:10", "02:50", "2026-03-08 00:00", "2026-03-09 00:00", []),
        # A start in the repeated hour takes its first occurrence, 01:30 EDT, and closes once.
        (
            "01:30",
            "03:00",
            "2026-11-01 00:00",
            "2026-11-02 00:00",
            [("05:30", True), ("08:00", False)],
        ),
        # A window inside the repeated hour opens and closes once, in its first pass.
        (
            "01:10",
            "01:50",
            "2026-11-01 00:00",
            "2026-11-02 00:00",
            [("05:10", True), ("05:50", False)],
        ),
    ],
)
def test_transitions_across_dst(
    start: str,
    end: str,
    range_start: str,
    range_end: str,
    expected: list[tuple[str, bool]],
) -> None:
    schedule = make("MON-SUN", start, end, timezone=NEW_YORK)
    day = range_start[:10]
    wanted = [(utc(f"{day} {clock}"), state) for clock, state in expected]

    found = schedule.transitions(local(range_start, NEW_YORK), local(range_end, NEW_YORK))

    assert found == wanted


def test_transitions_overnight_into_repeated_hour() -> None:
    # Saturday 22:00 EDT opens at 02:00 UTC, and the 01:30 close takes the first pass.
    schedule = make("MON-SUN", "22:00", "01:30", timezone=NEW_YORK)
    found = schedule.transitions(utc("2026-11-01 00:00"), utc("2026-11-01 12:00"))
    assert found == [(utc("2026-11-01 02:00"), True), (utc("2026-11-01 05:30"), False)]


@pytest.mark.parametrize(
    ("start", "end", "at", "expected"),
    [
        # Just before 03:00 EDT, the clamped 02:30 start has not taken effect.
        ("02:30", "05:00", "2026-03-08 06:59:59", False),
        # At 03:00 EDT the clamped start has taken effect.
        ("02:30", "05:00", "2026-03-08 07:00", True),
        # 01:15 EST, in the second pass of the repeated hour, stays closed after 01:30 EDT.
        ("22:00", "01:30", "2026-11-01 06:15", False),
        # 01:35 EST, in the second pass, does not reopen a window that ran in the first pass.
        ("01:10", "01:50", "2026-11-01 06:35", False),
        # 01:35 EDT, in the first pass, is inside that window.
        ("01:10", "01:50", "2026-11-01 05:35", True),
    ],
)
def test_is_active_across_dst(start: str, end: str, at: str, expected: bool) -> None:
    schedule = make("MON-SUN", start, end, timezone=NEW_YORK)
    assert schedule.is_active(utc(at)) is expected


def test_window_on_vanished_window() -> None:
    # The day qualifies, but both ends clamp to 03:00 EDT, so there is no window.
    schedule = make("MON-SUN", "02:10", "02:50", timezone=NEW_YORK)
    day = dt.date(2026, 3, 8)

    assert schedule.is_off_day(day) is False
    assert schedule.window_on(day) is None


def test_window_on_overnight_across_dst() -> None:
    # Saturday 22:00 EST to Sunday 06:00 EDT is eight wall-clock hours but seven real ones.
    schedule = make("MON-SUN", "22:00", "06:00", timezone=NEW_YORK)
    window = schedule.window_on(dt.date(2026, 3, 7))
    assert window == (utc("2026-03-08 03:00"), utc("2026-03-08 10:00"))


# --- holidays and excluded dates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "holiday_name"),
    [
        # Tuesday, the Korean New Year (Seollal) itself.
        ("2026-02-17", "Korean New Year"),
        # Monday, substitute for Independence Movement Day on Sunday 1 March.
        ("2026-03-02", "Alternative holiday for Independence Movement Day"),
        # Monday, substitute for Buddha's Birthday on Sunday 24 May.
        ("2026-05-25", "Alternative holiday for Buddha's Birthday"),
        # Monday, substitute for National Foundation Day on Saturday 3 October.
        ("2026-10-05", "Alternative holiday for National Foundation Day"),
        # Tuesday, substitute for the Korean New Year falling on Sunday 7 February.
        ("2027-02-09", "Alternative holiday for Korean New Year"),
    ],
)
def test_kr_holiday_is_off_day(day: str, holiday_name: str) -> None:
    date = dt.date.fromisoformat(day)
    assert holidays.country_holidays("KR", years=date.year).get(date) == holiday_name
    with_holidays = make("MON-FRI", "09:00", "18:00", holidays="KR")
    without_holidays = make("MON-FRI", "09:00", "18:00")

    assert with_holidays.is_off_day(date) is True
    assert with_holidays.window_on(date) is None
    assert with_holidays.is_active(local(f"{day} 12:00")) is False
    assert without_holidays.is_active(local(f"{day} 12:00")) is True


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Monday 2 March is a substitute holiday, so its evening owns no window.
        ("2026-03-02 23:00", False),
        # Tuesday 03:00 belongs to the holiday evening before it.
        ("2026-03-03 03:00", False),
        # Tuesday 3 March is a working day again.
        ("2026-03-03 22:00", True),
        # Children's Day morning (Tuesday 5 May) belongs to Monday evening, a working day.
        ("2026-05-05 03:00", True),
        # Children's Day evening owns no window.
        ("2026-05-05 22:00", False),
    ],
)
def test_kr_holiday_overnight(at: str, expected: bool) -> None:
    schedule = make("MON-FRI", "22:00", "06:00", holidays="KR")
    assert schedule.is_active(local(at)) is expected


def test_holidays_code_is_upper_cased() -> None:
    assert make("MON-FRI", "09:00", "18:00", holidays="kr").holidays == "KR"


@pytest.mark.parametrize("code", ["XX", "KOREA", "", "../os", "K\x00R"])
def test_unknown_holidays_code_rejected(code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        make("MON-FRI", "09:00", "18:00", holidays=code)

    assert f"unknown holiday country {code!r}" in str(raised.value)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Thursday 31 December is excluded.
        ("2026-12-31 12:00", False),
        # Wednesday 30 December is a normal working day.
        ("2026-12-30 12:00", True),
        # Friday 1 January 2027 is not excluded, and the schedule has no holiday country.
        ("2027-01-01 12:00", True),
    ],
)
def test_exclude_dates_are_off(at: str, expected: bool) -> None:
    schedule = make("MON-FRI", "09:00", "18:00", exclude_dates=["2026-12-31"])
    assert schedule.is_active(local(at)) is expected


def test_exclude_dates_overnight() -> None:
    schedule = make("MON-FRI", "22:00", "06:00", exclude_dates=["2026-12-31"])

    assert schedule.exclude_dates == [dt.date(2026, 12, 31)]
    assert schedule.is_off_day(dt.date(2026, 12, 31)) is True
    # The early morning of 1 January belongs to the excluded evening.
    assert schedule.is_active(local("2027-01-01 03:00")) is False
    # The early morning of 31 December belongs to 30 December, which is not excluded.
    assert schedule.is_active(local("2026-12-31 03:00")) is True


# --- windows -------------------------------------------------------------------------------------


def total_hours(windows: list[tuple[dt.datetime, dt.datetime]]) -> float:
    return sum((closes - opens).total_seconds() for opens, closes in windows) / 3600


@pytest.mark.parametrize(
    ("zone", "holiday_country", "expected_windows", "expected_hours"),
    [
        # March 2026 starts on a Sunday, so its weekdays are 2-6, 9-13, 16-20, 23-27 and
        # 30-31: 5 + 5 + 5 + 5 + 2 = 22 days of 9 hours, 198 hours in all.
        (SEOUL, None, 22, 198.0),
        # The Korean holidays remove Monday 2 March (1 March is a Sunday): 21 * 9 = 189 hours.
        (SEOUL, "KR", 21, 189.0),
        # New York moves its clocks early on Sunday 8 March, outside every window: 198 hours.
        (NEW_YORK, None, 22, 198.0),
    ],
)
def test_windows_month_hours(
    zone: str, holiday_country: str | None, expected_windows: int, expected_hours: float
) -> None:
    schedule = make("MON-FRI", "09:00", "18:00", timezone=zone, holidays=holiday_country)

    found = schedule.windows(local("2026-03-01 00:00", zone), local("2026-04-01 00:00", zone))

    assert len(found) == expected_windows
    assert total_hours(found) == expected_hours
    assert all(opens.tzinfo is UTC and closes.tzinfo is UTC for opens, closes in found)


def test_windows_are_clipped() -> None:
    # Noon Monday to noon Tuesday keeps 12:00-18:00 Monday and 09:00-12:00 Tuesday.
    schedule = make("MON-FRI", "09:00", "18:00")
    found = schedule.windows(local("2026-03-09 12:00"), local("2026-03-10 12:00"))
    assert found == [
        (utc("2026-03-09 03:00"), utc("2026-03-09 09:00")),
        (utc("2026-03-10 00:00"), utc("2026-03-10 03:00")),
    ]


def test_windows_merge_touching_days() -> None:
    # Whole-day windows on consecutive days touch, so three days form one interval.
    schedule = make("MON-SUN", "00:00", "24:00")
    found = schedule.windows(local("2026-03-09 00:00"), local("2026-03-12 00:00"))
    assert found == [(utc("2026-03-08 15:00"), utc("2026-03-11 15:00"))]


def test_transitions_skip_touching_days() -> None:
    # Monday to Friday 00:00-24:00 switches on at Monday 00:00 and off at Saturday 00:00 only.
    schedule = make("MON-FRI", "00:00", "24:00")
    found = schedule.transitions(local("2026-03-08 12:00"), local("2026-03-15 12:00"))
    assert found == [(utc("2026-03-08 15:00"), True), (utc("2026-03-13 15:00"), False)]


def test_windows_empty_range() -> None:
    schedule = make("MON-FRI", "09:00", "18:00")
    at = local("2026-03-09 12:00")

    assert schedule.windows(at, at) == []
    assert schedule.transitions(at, at) == []


# --- naive datetimes ---------------------------------------------------------------------------

NAIVE = dt.datetime(2026, 3, 9, 12, 0)
AWARE = local("2026-03-09 12:00")


@pytest.mark.parametrize(
    ("call", "argument_name"),
    [
        # is_active needs an aware instant.
        (lambda schedule: schedule.is_active(NAIVE), "at"),
        # A naive range start is rejected.
        (lambda schedule: schedule.transitions(NAIVE, AWARE), "start"),
        # A naive range end is rejected.
        (lambda schedule: schedule.transitions(AWARE, NAIVE), "end"),
        # windows checks its arguments the same way.
        (lambda schedule: schedule.windows(NAIVE, AWARE), "start"),
    ],
)
def test_naive_datetime_raises(call: Any, argument_name: str) -> None:
    schedule = make("MON-FRI", "09:00", "18:00")
    with pytest.raises(ValueError, match=f"^{argument_name} must be a timezone-aware datetime"):
        call(schedule)


# --- invalid specs -----------------------------------------------------------------------------

VALID = {"days": "MON-FRI", "start": "09:00", "end": "18:00"}


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        # An unknown day name at the end of a range.
        ({"days": "MON-FUN"}, "days", "'FUN'"),
        # An unknown single day name.
        ({"days": "Funday"}, "days", "'Funday'"),
        # An unknown name in a list.
        ({"days": ["MON", "XYZ"]}, "days", "'XYZ'"),
        # An empty day list.
        ({"days": []}, "days", "[]"),
        # An empty day string.
        ({"days": ""}, "days", "''"),
        # A range without its second day.
        ({"days": "MON-"}, "days", "'MON-'"),
        # A range with three parts.
        ({"days": "MON-TUE-WED"}, "days", "'MON-TUE-WED'"),
        # A range that starts and ends on the same day.
        ({"days": "MON-MON"}, "days", "'MON-MON'"),
        # Hour 24 is only an end.
        ({"start": "24:00"}, "start", "'24:00'"),
        # Hour 25 is invalid as a start.
        ({"start": "25:00"}, "start", "'25:00'"),
        # Hour 25 is invalid as an end.
        ({"end": "25:00"}, "end", "'25:00'"),
        # Only 24:00 itself may use hour 24.
        ({"end": "24:30"}, "end", "'24:30'"),
        # Minute 60 in a start.
        ({"start": "09:60"}, "start", "'09:60'"),
        # Minute 60 in an end.
        ({"end": "18:60"}, "end", "'18:60'"),
        # A time that is not HH:MM.
        ({"start": "9am"}, "start", "'9am'"),
        # A one-digit hour is not HH:MM either.
        ({"end": "6:00"}, "end", "'6:00'"),
        # A window that starts when it ends is empty.
        ({"start": "09:00", "end": "09:00"}, "end", "'09:00'"),
        # A zone missing from the IANA database.
        ({"timezone": "Mars/Olympus"}, "timezone", "'Mars/Olympus'"),
        # An empty zone name.
        ({"timezone": ""}, "timezone", "''"),
        # A country the holidays package does not know.
        ({"holidays": "XX"}, "holidays", "'XX'"),
        # An empty country code.
        ({"holidays": ""}, "holidays", "''"),
        # 30 February does not exist.
        ({"exclude_dates": ["2026-02-30"]}, "exclude_dates", "'2026-02-30'"),
        # A date written day first.
        ({"exclude_dates": ["31/12/2026"]}, "exclude_dates", "'31/12/2026'"),
        # A field the record format does not have.
        ({"weekends": True}, "weekends", "Extra inputs"),
    ],
)
def test_invalid_spec_names_field(changes: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Schedule.model_validate({**VALID, **changes})

    errors = caught.value.errors()
    assert len(errors) == 1
    assert field in errors[0]["loc"]
    assert needle in errors[0]["msg"]


# --- serialisation -----------------------------------------------------------------------------


def test_model_dump_round_trip() -> None:
    record = {
        "days": "mon-fri",
        "start": "09:00",
        "end": "24:00",
        "timezone": SEOUL,
        "holidays": "KR",
        "exclude_dates": ["2026-12-31"],
    }
    schedule = Schedule.model_validate(record)
    dumped = schedule.model_dump(mode="json")

    assert dumped == {**record, "days": "MON-FRI"}
    assert Schedule.model_validate(dumped) == schedule


def test_list_days_round_trip() -> None:
    schedule = make(["mon", "wed"], "22:00", "06:00")
    dumped = schedule.model_dump(mode="json")

    assert dumped["days"] == ["MON", "WED"]
    assert dumped["timezone"] == SEOUL
    assert dumped["holidays"] is None
    assert dumped["exclude_dates"] == []


def test_schedule_is_frozen() -> None:
    schedule = make("MON-FRI", "09:00", "18:00")
    with pytest.raises(ValidationError):
        schedule.start = "10:00"


# --- properties --------------------------------------------------------------------------------

DAY_NAMES = list(WEEK)
# Zones whose clocks change by one hour, by 30 minutes (Lord Howe) or at midnight (Santiago).
ZONES = [
    SEOUL,
    NEW_YORK,
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "UTC",
]

day_specs = st.one_of(
    st.sampled_from(DAY_NAMES),
    st.tuples(st.sampled_from(DAY_NAMES), st.sampled_from(DAY_NAMES))
    .filter(lambda pair: pair[0] != pair[1])
    .map(lambda pair: f"{pair[0]}-{pair[1]}"),
    st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True),
)
# Times near the usual change hours come up often, so gaps and repeats get exercised.
clocks = st.one_of(
    st.sampled_from(["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00"]),
    st.builds(
        lambda hour, minute: f"{hour:02d}:{minute:02d}", st.integers(0, 23), st.integers(0, 59)
    ),
)


@st.composite
def schedules(draw: st.DrawFn, zones: list[str] = ZONES) -> Schedule:
    start = draw(clocks)
    end = draw(st.one_of(clocks, st.just("24:00")).filter(lambda value: value != start))
    excluded = draw(st.lists(st.dates(dt.date(2025, 12, 1), dt.date(2028, 1, 31)), max_size=5))
    return Schedule(
        days=draw(day_specs),
        start=start,
        end=end,
        timezone=draw(st.sampled_from(zones)),
        holidays=draw(st.sampled_from([None, "KR", "US"])),
        exclude_dates=excluded,
    )


@st.composite
def ranges(draw: st.DrawFn) -> tuple[dt.datetime, dt.datetime]:
    naive_start = draw(st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31)))
    length = draw(st.timedeltas(dt.timedelta(0), dt.timedelta(days=16)))
    view = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = naive_start.replace(tzinfo=UTC)
    return start.astimezone(view), (start + length).astimezone(view)


@settings(max_examples=300, deadline=None)
@given(schedule=schedules(), bounds=ranges())
def test_transitions_agree_with_is_active(
    schedule: Schedule, bounds: tuple[dt.datetime, dt.datetime]
) -> None:
    start, end = bounds
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    changes = schedule.transitions(start, end)
    instants = [instant for instant, _ in changes]

    assert instants == sorted(set(instants))
    assert all(start_utc <= instant < end_utc for instant in instants)
    for instant, state in changes:
        assert schedule.is_active(instant) is state
    for (_, before), (_, after) in pairwise(changes):
        assert before is not after

    # Between consecutive changes, and before the first one, the state stays the same.
    edges = [start_utc, *instants, end_utc]
    for low, high in pairwise(edges):
        if low < high:
            middle = low + (high - low) / 2
            assert schedule.is_active(middle) is schedule.is_active(low)


@settings(max_examples=200, deadline=None)
@given(schedule=schedules(), bounds=ranges())
def test_windows_match_transitions(
    schedule: Schedule, bounds: tuple[dt.datetime, dt.datetime]
) -> None:
    start, end = bounds
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    found = schedule.windows(start, end)

    for opens, closes in found:
        assert start_utc <= opens < closes <= end_utc
        assert schedule.is_active(opens) is True
    # Merged windows never touch, so a closed gap always separates them.
    for (_, closes), (opens, _) in pairwise(found):
        assert closes < opens
        assert schedule.is_active(closes) is False

    # The active time counted from transitions equals the total length of the windows.
    edges = [(start_utc, schedule.is_active(start)), *schedule.transitions(start, end)]
    active = dt.timedelta(0)
    for (low, state), (high, _) in pairwise([*edges, (end_utc, False)]):
        if state:
            active += high - low
    assert active == sum((closes - opens for opens, closes in found), dt.timedelta(0))


def is_active_by_wall_clock(schedule: Schedule, at: dt.datetime) -> bool:
    """Decide from local wall-clock minutes, valid only in zones without daylight saving."""
    wall = at.astimezone(ZoneInfo(schedule.timezone))
    minute = wall.hour * 60 + wall.minute
    opening = int(schedule.start[:2]) * 60 + int(schedule.start[3:])
    closing = int(schedule.end[:2]) * 60 + int(schedule.end[3:])
    today_on = not schedule.is_off_day(wall.date())
    yesterday_on = not schedule.is_off_day(wall.date() - dt.timedelta(days=1))
    if opening < closing:
        return today_on and opening <= minute < closing
    return (today_on and minute >= opening) or (yesterday_on and minute < closing)


@settings(max_examples=300, deadline=None)
@given(
    schedule=schedules(zones=[SEOUL, "UTC"]),
    at=st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31), timezones=st.just(UTC)),
)
def test_is_active_matches_wall_clock(schedule: Schedule, at: dt.datetime) -> None:
    assert schedule.is_active(at) is is_active_by_wall_clock(schedule, at)
