"""Core-time schedule of a trial account.

A schedule names the local hours in which an account's cloud resources (Kubernetes worker
nodes, EMR clusters) run. Jobs ask it whether resources should be up at a given instant,
which instants switch them on or off, and how many hours they run in a period.

Each qualifying local date owns one window ``[start, end)`` of wall-clock time in the
schedule's IANA zone. A window whose end comes before its start runs overnight, and all of
it belongs to the date it started on, so weekday, holiday and excluded-date checks look at
that date only. Wall times are mapped to UTC as follows: a time skipped by a daylight-saving
change takes effect at the end of the gap, and a repeated time at its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from holidays import country_holidays
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

_DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MINUTES_PER_DAY = 24 * 60
_CLOCK_PATTERN = re.compile(r"(\d{2}):(\d{2})")
_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")

Window = tuple[dt.datetime, dt.datetime]
"""An active interval ``[opens, closes)`` as aware UTC datetimes."""


class Schedule(BaseModel):
    """Weekly core time of one account, with its zone, holidays and excluded dates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: str | list[str]
    start: str
    end: str
    timezone: str = "Asia/Seoul"
    holidays: str | None = None
    exclude_dates: list[dt.date] = Field(default_factory=list)

    _zone: ZoneInfo = PrivateAttr()
    _weekdays: frozenset[int] = PrivateAttr()
    _start_minute: int = PrivateAttr()
    _end_minute: int = PrivateAttr()
    _excluded: frozenset[dt.date] = PrivateAttr()

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return _normalise_day_spec(value)
        if not value:
            raise ValueError("the day list [] is empty. Name at least one day, like ['MON']")
        return [_normalise_day_name(name) for name in value]

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        _parse_clock(value, allow_midnight_end=False)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str, info: ValidationInfo) -> str:
        end_minute = _parse_clock(value, allow_midnight_end=True)
        start = info.data.get("start")
        if start is not None and _parse_clock(start, allow_midnight_end=False) == end_minute:
            raise ValueError(
                f"end {value!r} equals start {start!r}, which leaves an empty window. "
                "Use '00:00' to '24:00' for a whole day"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        # "localtime" is a copy of the host's zone, so the schedule would change with the host.
        if value == "localtime" or value not in _list_zone_names():
            raise ValueError(
                f"unknown time zone {value!r}. Use an IANA name like 'Asia/Seoul' or 'UTC'"
            )
        return value

    @field_validator("holidays")
    @classmethod
    def _check_holidays(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if not _has_holiday_calendar(code):
            raise ValueError(
                f"unknown holiday country {value!r}. Use an ISO 3166 code that the "
                "holidays package supports, like 'KR', or null for no holidays"
            )
        return code

    @field_validator("exclude_dates", mode="before")
    @classmethod
    def _parse_exclude_dates(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_parse_date(item) for item in value]

    def model_post_init(self, context: Any, /) -> None:
        self._zone = ZoneInfo(self.timezone)
        self._weekdays = _expand_days(self.days)
        self._start_minute = _parse_clock(self.start, allow_midnight_end=False)
        self._end_minute = _parse_clock(self.end, allow_midnight_end=True)
        self._excluded = frozenset(self.exclude_dates)

    def is_off_day(self, day: dt.date) -> bool:
        """Return True when the local date owns no window.

        That is the case when its weekday is not in ``days``, or it is a holiday of the
        ``holidays`` country, or it is in ``exclude_dates``.
        """
        if day.weekday() not in self._weekdays or day in self._excluded:
            return True
        return self.holidays is not None and day in _list_holidays(self.holidays, day.year)

    def window_on(self, day: dt.date) -> Window | None:
        """Return the window that the local date owns, or None.

        None means an off day, or a window that vanishes because both of its ends fall in
        the same daylight-saving gap.
        """
        if self.is_off_day(day):
            return None
        opens = _convert_wall_to_utc(_wall_time(day, self._start_minute), self._zone)
        close_day = day if self._end_minute > self._start_minute else day + dt.timedelta(days=1)
        closes = _convert_wall_to_utc(_wall_time(close_day, self._end_minute), self._zone)
        if opens >= closes:
            return None
        return opens, closes

    def is_active(self, at: dt.datetime) -> bool:
        """Return True when the resources should run at the aware instant ``at``."""
        _require_aware(at, "at")
        today = at.astimezone(self._zone).date()
        # The window of the previous date may still be running overnight.
        for day in (today - dt.timedelta(days=1), today):
            window = self.window_on(day)
            if window is not None and window[0] <= at < window[1]:
                return True
        return False

    def transitions(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, bool]]:
        """List each UTC instant in ``[start, end)`` where the state switches, with the new state.

        Windows that touch are merged first, so a window closing exactly when the next one
        opens gives no transition.
        """
        _require_aware(start, "start")
        _require_aware(end, "end")
        found: list[tuple[dt.datetime, bool]] = []
        for opens, closes in self._merge_windows(start, end):
            if start <= opens < end:
                found.append((opens, True))
            if start <= closes < end:
                found.append((closes, False))
        return found

    def windows(self, start: dt.datetime, end: dt.datetime) -> list[Window]:
        """List the active intervals clipped to ``[start, end)``, merged where they touch."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        clipped: list[Window] = []
        for opens, closes in self._merge_windows(start, end):
            lower = max(opens, start).astimezone(dt.UTC)
            upper = min(closes, end).astimezone(dt.UTC)
            if lower < upper:
                clipped.append((lower, upper))
        return clipped

    def _merge_windows(self, start: dt.datetime, end: dt.datetime) -> list[Window]:
        """Collect the windows of every local date that can overlap ``[start, end)``, merged."""
        # A window lasts less than a day plus a daylight-saving shift, so the date before
        # start's local date is the earliest one whose window can still be running.
        first_day = start.astimezone(self._zone).date() - dt.timedelta(days=1)
        last_day = end.astimezone(self._zone).date()
        merged: list[Window] = []
        for day in _iterate_dates(first_day, last_day):
            window = self.window_on(day)
            if window is None:
                continue
            if merged and merged[-1][1] >= window[0]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], window[1]))
            else:
                merged.append(window)
        return merged


def _normalise_day_spec(value: str) -> str:
    """Upper-case a single day name or a range like ``MON-FRI``, rejecting anything else."""
    if "-" not in value:
        return _normalise_day_name(value)
    parts = value.split("-")
    if len(parts) != 2 or not all(part.strip() for part in parts):
        raise ValueError(
            f"invalid day range {value!r}. Write two day names joined by '-', like 'MON-FRI'"
        )
    first, last = (_normalise_day_name(part) for part in parts)
    if first == last:
        raise ValueError(
            f"invalid day range {value!r} starts and ends on the same day. "
            f"Write the single day {first!r} instead"
        )
    return f"{first}-{last}"


def _normalise_day_name(name: str) -> str:
    normalised = name.strip().upper()
    if normalised not in _DAY_NAMES:
        raise ValueError(f"unknown day name {name!r}. Use one of {', '.join(_DAY_NAMES)}")
    return normalised


def _expand_days(days: str | list[str]) -> frozenset[int]:
    """Turn validated days into weekday numbers as ``date.weekday()`` counts them (MON is 0)."""
    if isinstance(days, list):
        return frozenset(_DAY_NAMES.index(name) for name in days)
    if "-" not in days:
        return frozenset({_DAY_NAMES.index(days)})
    first, last = (_DAY_NAMES.index(name) for name in days.split("-"))
    span = (last - first) % 7
    return frozenset((first + offset) % 7 for offset in range(span + 1))


def _parse_clock(value: str, *, allow_midnight_end: bool) -> int:
    """Parse ``HH:MM`` into minutes after midnight, allowing ``24:00`` only as a window's end."""
    match = _CLOCK_PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(
            f"invalid time {value!r}. Write it as HH:MM on a 24-hour clock, like '09:00'"
        )
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute > 59:
        raise ValueError(f"invalid time {value!r}: the minute must be 00 to 59")
    if allow_midnight_end and hour == 24 and minute == 0:
        return _MINUTES_PER_DAY
    if hour > 23:
        allowed = "00 to 23, or 24:00 for midnight" if allow_midnight_end else "00 to 23"
        raise ValueError(f"invalid time {value!r}: the hour must be {allowed}")
    return hour * 60 + minute


def _parse_date(value: Any) -> Any:
    """Parse a ``YYYY-MM-DD`` string into a date, and pass other values on to pydantic."""
    if not isinstance(value, str):
        return value
    if _DATE_PATTERN.fullmatch(value) is None:
        raise ValueError(f"invalid date {value!r}. Write it as YYYY-MM-DD, like '2026-12-31'")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid date {value!r}: that day does not exist") from None


def _require_aware(value: dt.datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}. "
            "Attach a zone, for example with datetime.replace(tzinfo=datetime.UTC)"
        )


def _wall_time(day: dt.date, minute: int) -> dt.datetime:
    """Return the naive local datetime ``minute`` minutes after midnight of ``day``."""
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)


def _convert_wall_to_utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Convert a naive wall time in ``zone`` to UTC, moving a skipped time to the gap's end.

    A repeated time resolves to its first occurrence because fold=0 selects it.
    """
    first_reading = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if first_reading.astimezone(zone).replace(tzinfo=None) == wall:
        return first_reading
    # The wall time is skipped. With fold=0 zoneinfo reads it at the offset from before the
    # change, which lands after the gap. With fold=1 it uses the later offset, which lands
    # before the change, so the change instant lies between the two readings.
    second_reading = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    return _find_offset_change(second_reading, first_reading, zone)


def _find_offset_change(before: dt.datetime, after: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Bisect whole seconds for the first instant in ``(before, after]`` with after's offset."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, dt.UTC)


def _iterate_dates(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


# The holiday calendar of the service's country, Korea, which the example schedules name.
# Importing its module takes about 0.04 s.
SERVICE_HOLIDAYS = "KR"


def load_calendars() -> None:
    """Load the zone names and the service's holiday calendar, which validation needs.

    A run calls this while its records are read, so their validation does not wait for it.
    """
    _list_zone_names()
    _has_holiday_calendar(SERVICE_HOLIDAYS)


@functools.cache
def _list_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.lru_cache(maxsize=64)
def _has_holiday_calendar(code: str) -> bool:
    # Asking for one calendar imports one module of the holidays package. Listing the
    # supported countries imports all of them, which took 0.05 s at every start.
    try:
        country_holidays(code)
    except NotImplementedError:
        return False
    return True


@functools.cache
def _list_holidays(country: str, year: int) -> frozenset[dt.date]:
    return frozenset(country_holidays(country, years=year).keys())
