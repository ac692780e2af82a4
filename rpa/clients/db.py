"""The platform database: schedule rows, the run table and the audit table.

MySQL or MariaDB in production (SQLAlchemy Core over pymysql, utf8mb4) and SQLite in the
sandbox. The MySQL schema is created by the SQL files in `rpa/migrations/`; SQLite gets the same
tables from the metadata below, and a test checks that both agree. Instants are stored as UTC
in DATETIME columns and read back as aware datetimes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

from rpa.clients import errors

log = logging.getLogger(__name__)
SERVICE = "database"


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as naive UTC; naive values are rejected on write."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect
                           ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored as UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect
                             ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


metadata = sa.MetaData()

run_table = sa.Table(
    "rpa_run", metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("job", sa.String(32), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
)

action_log_table = sa.Table(
    "rpa_action_log", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("job", sa.String(32), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

schedule_table = sa.Table(
    "rpa_schedule", metadata,
    sa.Column("job", sa.String(32), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("days", sa.String(64), nullable=False),
    sa.Column("start_time", sa.String(5), nullable=False),
    sa.Column("end_time", sa.String(5), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("holidays", sa.String(8), nullable=True),
    sa.Column("exclude_dates", sa.Text, nullable=False),
    sa.Column("next_on_at", UtcDateTime, nullable=True),
    sa.Column("next_off_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

migrations_table = sa.Table(
    "rpa_schema_migrations", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class ScheduleRow:
    """The schedule row of one account for one job, as the platform shows it."""

    job: str
    account: str
    days: str
    start_time: str
    end_time: str
    timezone: str
    holidays: str | None
    exclude_dates: tuple[str, ...]
    next_on_at: dt.datetime | None
    next_off_at: dt.datetime | None

    def describe(self) -> str:
        return (f"{self.days} {self.start_time}-{self.end_time} {self.timezone}"
                f"{' holidays ' + self.holidays if self.holidays else ''}")


@dataclass(frozen=True)
class AuditEntry:
    run_id: str
    job: str
    account: str
    kind: str
    target: str
    status: str
    detail: str
    created_at: dt.datetime


class Database:
    """Reads and writes of the tool's tables; every failure raises `errors.Unavailable`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def connect(cls, url: str) -> Database:
        """Open a pool and check that the server responds; raises Unavailable naming the host."""
        parsed = sa.make_url(url)
        options: dict[str, Any] = {"pool_pre_ping": True, "future": True}
        if parsed.get_backend_name() == "mysql":
            options["connect_args"] = {"charset": "utf8mb4", "connect_timeout": 10}
            options["pool_recycle"] = 3600
        database = cls(sa.create_engine(parsed, **options))
        with database._connection() as conn:
            conn.execute(sa.text("SELECT 1"))
        return database

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> list[str]:
        """Create the tables if needed; returns the names of the migrations applied now."""
        if self.engine.dialect.name != "mysql":
            with self._connection() as conn:
                metadata.create_all(conn)
            return []
        with self._connection() as conn:
            migrations_table.create(conn, checkfirst=True)
            done = set(conn.scalars(sa.select(migrations_table.c.name)))
        applied = []
        for name, statements in _migration_files():
            if name in done:
                continue
            with self._connection() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement))
                conn.execute(migrations_table.insert().values(name=name, applied_at=_utcnow()))
            log.info("applied database migration %s", name)
            applied.append(name)
        return applied

    # Schedule rows.

    def read_schedule_rows(self, job: str) -> dict[str, ScheduleRow]:
        """Return the rows of `job` by account; none when the table does not exist yet (dry-run)."""
        with self._connection() as conn:
            if not sa.inspect(conn).has_table(schedule_table.name):
                return {}
            rows = conn.execute(sa.select(schedule_table).where(schedule_table.c.job == job))
            return {row.account: _schedule_row(row._mapping) for row in rows}

    def upsert_schedule_row(self, row: ScheduleRow, *, now: dt.datetime) -> None:
        values = {
            "days": row.days, "start_time": row.start_time, "end_time": row.end_time,
            "timezone": row.timezone, "holidays": row.holidays,
            "exclude_dates": json.dumps(list(row.exclude_dates)),
            "next_on_at": row.next_on_at, "next_off_at": row.next_off_at, "updated_at": now,
        }
        # One upsert statement: on InnoDB an UPDATE that finds no row keeps a gap lock, so two
        # accounts written at once by UPDATE and then INSERT deadlocked on each other's gap.
        with self._connection() as conn:
            if conn.dialect.name == "mysql":
                from sqlalchemy.dialects import mysql

                upsert = mysql.insert(schedule_table).values(
                    job=row.job, account=row.account, **values)
                conn.execute(upsert.on_duplicate_key_update(**values))
                return
            from sqlalchemy.dialects import sqlite

            conn.execute(sqlite.insert(schedule_table).values(
                job=row.job, account=row.account, **values).on_conflict_do_update(
                index_elements=["job", "account"], set_=values))

    def delete_schedule_row(self, job: str, account: str) -> bool:
        key = (schedule_table.c.job == job) & (schedule_table.c.account == account)
        with self._connection() as conn:
            return conn.execute(schedule_table.delete().where(key)).rowcount > 0

    # Runs and the audit table.

    def start_run(self, *, run_id: str, job: str, dry_run: bool, now: dt.datetime) -> None:
        with self._connection() as conn:
            conn.execute(run_table.insert().values(run_id=run_id, job=job, dry_run=dry_run,
                                                   status="running", started_at=now))

    def finish_run(self, *, run_id: str, status: str, summary: Mapping[str, Any],
                   now: dt.datetime) -> None:
        with self._connection() as conn:
            conn.execute(run_table.update().where(run_table.c.run_id == run_id).values(
                status=status, finished_at=now, summary=json.dumps(summary)))

    def mark_interrupted_runs(self, *, job: str) -> int:
        """Mark the job's runs still `running` as `interrupted`; returns how many.

        A process killed without warning (SIGKILL, a crash) leaves its run `running`. Call
        this only while holding the job's lock, when no other run of the job can be live.
        Their `finished_at` stays empty, because when they stopped is unknown.
        """
        key = (run_table.c.job == job) & (run_table.c.status == "running")
        with self._connection() as conn:
            result = conn.execute(run_table.update().where(key).values(status="interrupted"))
            return int(result.rowcount)

    def log_action(self, entry: AuditEntry) -> None:
        self.log_actions([entry])

    def log_actions(self, entries: Sequence[AuditEntry]) -> None:
        """Write audit rows in one transaction, in the order given."""
        if not entries:
            return
        with self._connection() as conn:
            conn.execute(action_log_table.insert(), [
                {"run_id": entry.run_id, "job": entry.job, "account": entry.account,
                 "kind": entry.kind, "target": entry.target[:255], "status": entry.status,
                 "detail": entry.detail, "created_at": entry.created_at}
                for entry in entries])

    def read_actions(self, *, run_id: str | None = None, since: dt.datetime | None = None
                     ) -> list[AuditEntry]:
        """Return the audit rows in order; none when the table does not exist yet (dry-run)."""
        query = sa.select(action_log_table).order_by(action_log_table.c.id)
        if run_id is not None:
            query = query.where(action_log_table.c.run_id == run_id)
        if since is not None:
            query = query.where(action_log_table.c.created_at >= since)
        with self._connection() as conn:
            if not sa.inspect(conn).has_table(action_log_table.name):
                return []
            return [AuditEntry(**{k: v for k, v in row._mapping.items() if k != "id"})
                    for row in conn.execute(query)]

    def read_run(self, run_id: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute(sa.select(run_table).where(run_table.c.run_id == run_id)).first()
            return dict(row._mapping) if row else None

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as err:
            raise errors.Unavailable(
                f"database {self.describe()} failed: {_first_line(err.orig)}", service=SERVICE
            ) from err
        except sa.exc.DBAPIError as err:
            raise errors.ClientError(
                f"database {self.describe()} rejected a statement: {_first_line(err.orig)}",
                service=SERVICE,
            ) from err


def _schedule_row(row: sa.RowMapping) -> ScheduleRow:
    return ScheduleRow(
        job=row["job"], account=row["account"], days=row["days"],
        start_time=row["start_time"], end_time=row["end_time"], timezone=row["timezone"],
        holidays=row["holidays"], exclude_dates=tuple(json.loads(row["exclude_dates"])),
        next_on_at=row["next_on_at"], next_off_at=row["next_off_at"],
    )


def _migration_files() -> list[tuple[str, list[str]]]:
    folder = resources.files("rpa") / "migrations"
    files = sorted((item for item in folder.iterdir() if item.name.endswith(".sql")),
                   key=lambda item: item.name)
    return [(item.name, _statements(item.read_text(encoding="utf-8"))) for item in files]


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; the files keep `;` out of comments and strings."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def _first_line(err: BaseException | None) -> str:
    text = str(err) if err is not None else ""
    return (text.splitlines() or [type(err).__name__])[0][:200]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
