"""The schedule row that a job keeps for each account in the platform database.

The platform shows an account's core time from its row in `rpa_schedule`, one row per job
and account. Every job that switches resources on a schedule builds the row here, so the
rows of all jobs read the same.
"""

from __future__ import annotations

import datetime as dt

from rpa.clients.db import ScheduleRow
from rpa.schedule import Schedule

# The next switch on and off are looked for within this horizon. A schedule with no window
# in two weeks (long excluded dates) shows no next switch, which the platform reads as "none
# planned".
NEXT_SWITCH_HORIZON = dt.timedelta(days=14)


def schedule_row_for(job: str, account: str, schedule: Schedule, now: dt.datetime
                     ) -> ScheduleRow:
    """Build the row of `account` for `job`, with the next switches after `now`."""
    switches = schedule.transitions(now, now + NEXT_SWITCH_HORIZON)
    next_on = next((at for at, state in switches if state and at > now), None)
    next_off = next((at for at, state in switches if not state and at > now), None)
    days = schedule.days if isinstance(schedule.days, str) else ",".join(schedule.days)
    return ScheduleRow(job, account, days, schedule.start, schedule.end, schedule.timezone,
                       schedule.holidays,
                       tuple(day.isoformat() for day in sorted(schedule.exclude_dates)),
                       next_on, next_off)
