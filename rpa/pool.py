"""The state of each pooled account, from its password record and the audit table.

The states, as of a day in Asia/Seoul:

- free: never used, the record has no period;
- scheduled: granted, the period starts later;
- active: in its period; ending: in its period, which ends within 7 days;
- expired: the period has ended and the end-of-service job has not released it yet;
- quarantined: the end-of-service job failed for it and has not released it since;
- released: the end-of-service job released it (`PasswordRecord.is_released`);
- invalid: its records do not validate.

Only free and released accounts may be granted. An account in its period counts as in use
whatever the audit table shows, because its user is working on it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa

from rpa.admin import CommandError
from rpa.clients import errors
from rpa.clients.db import Database, action_log_table
from rpa.daily_report import ENDING_SOON_DAYS
from rpa.environment import Environment, EnvironmentError
from rpa.inventory import Account, Inventory, PasswordRecord
from rpa.plan import Kind
from rpa.report import EXIT_USAGE

log = logging.getLogger(__name__)

PoolState = Literal["free", "scheduled", "active", "ending", "expired", "quarantined",
                    "released", "invalid"]
POOL_STATES: tuple[PoolState, ...] = ("free", "scheduled", "active", "ending", "expired",
                                      "quarantined", "released", "invalid")
GRANTABLE_STATES: frozenset[PoolState] = frozenset({"free", "released"})
RELEASE_JOB = "endsvc"


@dataclass(frozen=True)
class ReleaseHistory:
    """Per account, when the end-of-service job last failed and last released it."""

    last_failure: dict[str, dt.datetime] = field(default_factory=dict)
    last_release: dict[str, dt.datetime] = field(default_factory=dict)

    def is_quarantined(self, account: str) -> bool:
        """True when a failed release action is more recent than the last release done."""
        failed = self.last_failure.get(account)
        if failed is None:
            return False
        released = self.last_release.get(account)
        return released is None or failed > released


def read_release_history(database: Database) -> ReleaseHistory:
    """Read the latest failed endsvc action and the latest release of every account.

    A database without the audit table (no job has run yet) has no history. Raises
    errors.Unavailable when the database cannot be read.
    """
    table = action_log_table
    failed = (sa.select(table.c.account, sa.func.max(table.c.created_at))
              .where(table.c.job == RELEASE_JOB, table.c.status == "failed")
              .group_by(table.c.account))
    released = (sa.select(table.c.account, sa.func.max(table.c.created_at))
                .where(table.c.job == RELEASE_JOB, table.c.status == "done",
                       table.c.kind == Kind.ACCOUNT_RELEASE.value)
                .group_by(table.c.account))
    try:
        with database.engine.connect() as conn:
            if not sa.inspect(conn).has_table(table.name):
                return ReleaseHistory()
            failures = {row[0]: _aware(row[1]) for row in conn.execute(failed)}
            releases = {row[0]: _aware(row[1]) for row in conn.execute(released)}
    except sa.exc.SQLAlchemyError as err:
        raise errors.Unavailable(f"database {database.describe()}: cannot read the audit "
                                 f"table: {type(err).__name__}", service="database") from err
    return ReleaseHistory(failures, releases)


def _aware(value: dt.datetime) -> dt.datetime:
    # MAX() keeps the column type on SQLite and MariaDB, but an aware value is checked anyway.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def pool_state(account: Account, today: dt.date, history: ReleaseHistory | None) -> PoolState:
    """Return the state of `account` on `today`; without history none is quarantined."""
    record = account.password
    if record.start_date is not None and record.end_date is not None \
            and today <= record.end_date and not record.is_released():
        if today < record.start_date:
            return "scheduled"
        return "ending" if days_left(record, today) <= ENDING_SOON_DAYS else "active"
    if history is not None and history.is_quarantined(account.name):
        return "quarantined"
    if record.start_date is None:
        return "free"
    return "released" if record.is_released() else "expired"


def days_left(record: PasswordRecord, today: dt.date) -> int:
    """Days from `today` to the last day of use: 0 on it, negative after it."""
    assert record.end_date is not None
    return (record.end_date - today).days


def pool_states(inventory: Inventory, today: dt.date,
                history: ReleaseHistory | None) -> dict[str, PoolState]:
    """Map every account to its state, invalid ones included, sorted by name."""
    states: dict[str, PoolState] = {
        name: pool_state(account, today, history)
        for name, account in inventory.accounts.items()}
    for error in inventory.errors:
        states[error.account] = "invalid"
    return dict(sorted(states.items()))


def is_grantable_record(record: PasswordRecord) -> bool:
    """True for a record that may take a new period: never used or released."""
    return record.start_date is None or record.is_released()


def read_history(env: Environment, *, required: bool) -> tuple[ReleaseHistory | None, str | None]:
    """Read the release history; returns it, or None with the reason it was not read.

    Raises CommandError (exit 2) when `required` and RPA_DB_URL is not set, because a grant
    without the audit table could hand out an account whose release failed.
    """
    try:
        database = env.database()
    except EnvironmentError as err:
        if required:
            raise CommandError(f"{err}; a grant reads the audit table to keep accounts whose "
                               "release failed out of the pool", status=EXIT_USAGE) from None
        log.warning("audit table not read: %s", err)
        return None, str(err)
    if required:
        return read_release_history(database), None
    try:
        return read_release_history(database), None
    except errors.ClientError as err:
        log.error("audit table not read: %s", err)
        return None, str(err)
