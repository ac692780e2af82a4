"""Tests of `Database` on SQLite and on the local MariaDB (see the `mysql_url` fixture)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from rpa.clients import errors
from rpa.clients.db import AuditEntry, Database, ScheduleRow, metadata, schedule_table

SEOUL = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=dt.UTC)
MIGRATION = "0001_create_rpa_tables.sql"

ROW = ScheduleRow(
    job="modeler", account="trial_user07", days="mon-fri", start_time="09:00",
    end_time="18:00", timezone="Asia/Seoul", holidays="KR",
    exclude_dates=("2026-03-03", "2026-05-05"),
    next_on_at=dt.datetime(2026, 3, 4, 0, 0, tzinfo=dt.UTC),
    next_off_at=dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC),
)


@pytest.fixture
def mysql_db(mysql_url: str) -> Iterator[Database]:
    """The MariaDB test database before any migration."""
    database = Database.connect(mysql_url)
    yield database
    database.close()


def entry(run_id: str, created_at: dt.datetime, **changes: str) -> AuditEntry:
    base = AuditEntry(run_id=run_id, job="modeler", account="trial_user07",
                      kind="delete_project", target="prj-000001", status="done",
                      detail="", created_at=created_at)
    return dataclasses.replace(base, **changes)


# Migrations and schema.


@pytest.mark.mariadb
def test_migrate_applies_first_migration_once(mysql_db: Database) -> None:
    assert mysql_db.migrate() == [MIGRATION]
    assert mysql_db.migrate() == []

    with mysql_db.engine.connect() as conn:
        applied = conn.execute(sa.text("SELECT name FROM rpa_schema_migrations")).scalars().all()
    assert applied == [MIGRATION]


@pytest.mark.mariadb
def test_migration_tables_match_the_metadata(mysql_db: Database) -> None:
    mysql_db.migrate()
    inspector = sa.inspect(mysql_db.engine)

    found = {name for name in inspector.get_table_names() if name.startswith("rpa_")}
    assert found == set(metadata.tables)
    for table in metadata.tables.values():
        columns = {column["name"]: column for column in inspector.get_columns(table.name)}
        assert list(columns) == [column.name for column in table.columns], table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        primary_key = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert primary_key == [column.name for column in table.primary_key], table.name


@pytest.mark.mariadb
def test_migration_datetime_columns_keep_microseconds(mysql_db: Database) -> None:
    mysql_db.migrate()
    inspector = sa.inspect(mysql_db.engine)

    fractions = {
        (table, column["name"]): getattr(column["type"], "fsp", None)
        for table in metadata.tables
        for column in inspector.get_columns(table)
        if str(column["type"]).startswith("DATETIME")
    }
    assert fractions
    assert set(fractions.values()) == {6}, fractions


@pytest.mark.mariadb
def test_migration_tables_use_utf8mb4(mysql_db: Database) -> None:
    mysql_db.migrate()

    with mysql_db.engine.connect() as conn:
        collations = dict(conn.execute(sa.text(
            "SELECT table_name, table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name LIKE 'rpa\\_%'")).all())
    tables = set(metadata.tables) - {"rpa_schema_migrations"}
    assert {name: collations[name] for name in tables} == dict.fromkeys(
        tables, "utf8mb4_unicode_ci")


def test_migrate_on_sqlite_creates_tables_from_metadata(tmp_path: Path) -> None:
    database = Database.connect(f"sqlite:///{tmp_path / 'rpa.db'}")

    assert database.migrate() == []
    assert database.migrate() == []
    assert set(sa.inspect(database.engine).get_table_names()) == set(metadata.tables)
    database.close()


# Schedule rows.


def test_upsert_schedule_row_inserts_then_updates(db: Database) -> None:
    db.upsert_schedule_row(ROW, now=NOW)
    assert db.read_schedule_rows("modeler") == {"trial_user07": ROW}

    changed = dataclasses.replace(ROW, days="mon,wed", end_time="24:00", holidays=None,
                                  exclude_dates=(), next_on_at=None,
                                  next_off_at=dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC))
    later = NOW + dt.timedelta(hours=1)
    db.upsert_schedule_row(changed, now=later)

    assert db.read_schedule_rows("modeler") == {"trial_user07": changed}
    with db.engine.connect() as conn:
        updated_at = conn.execute(sa.select(schedule_table.c.updated_at)).scalar_one()
    assert updated_at == later


def test_upsert_of_unchanged_row_keeps_one_row(db: Database) -> None:
    # MySQL counts an UPDATE that changes nothing as 0 affected rows unless the client sets
    # the FOUND_ROWS flag. Without it the upsert would INSERT a duplicate key.
    db.upsert_schedule_row(ROW, now=NOW)
    db.upsert_schedule_row(ROW, now=NOW)

    assert db.read_schedule_rows("modeler") == {"trial_user07": ROW}


def test_schedule_rows_are_read_per_job(db: Database) -> None:
    other = dataclasses.replace(ROW, job="mcm", account="trial_user08")
    db.upsert_schedule_row(ROW, now=NOW)
    db.upsert_schedule_row(other, now=NOW)

    assert db.read_schedule_rows("mcm") == {"trial_user08": other}
    assert db.read_schedule_rows("unknown") == {}


def test_delete_schedule_row_reports_whether_it_existed(db: Database) -> None:
    db.upsert_schedule_row(ROW, now=NOW)

    assert db.delete_schedule_row("modeler", "trial_user07") is True
    assert db.delete_schedule_row("modeler", "trial_user07") is False
    assert db.read_schedule_rows("modeler") == {}


# Instants.


@pytest.mark.parametrize(
    "written",
    [
        NOW,  # already UTC
        dt.datetime(2026, 3, 2, 10, 2, 3, 456789, tzinfo=SEOUL),  # the same instant in +09:00
        dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=SEOUL),  # last microsecond
        dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),  # first microsecond
    ],
)
def test_aware_datetime_round_trips_as_utc(db: Database, written: dt.datetime) -> None:
    db.upsert_schedule_row(dataclasses.replace(ROW, next_on_at=written), now=NOW)

    read = db.read_schedule_rows("modeler")["trial_user07"].next_on_at

    assert read == written
    assert read is not None
    assert read.tzinfo is dt.UTC
    assert read.replace(tzinfo=None) == written.astimezone(dt.UTC).replace(tzinfo=None)


def test_naive_datetime_is_rejected(db: Database) -> None:
    naive = dataclasses.replace(ROW, next_on_at=dt.datetime(2026, 3, 4, 9, 0))

    with pytest.raises(sa.exc.StatementError) as caught:
        db.upsert_schedule_row(naive, now=NOW)

    assert isinstance(caught.value.orig, ValueError)
    assert "naive datetime 2026-03-04T09:00:00 cannot be stored as UTC" in str(caught.value)
    assert db.read_schedule_rows("modeler") == {}


# Runs and the audit table.


def test_korean_text_and_emoji_round_trip(db: Database) -> None:
    korean = entry("run-1", NOW, target="프로젝트/고객-분석 ✨",
                   detail="홍길동 (데이터분석팀) 요청 🚀")

    db.log_action(korean)

    assert db.read_actions(run_id="run-1") == [korean]


def test_long_target_is_cut_to_column_size(db: Database) -> None:
    db.log_action(entry("run-1", NOW, target="가" * 300))

    assert db.read_actions()[0].target == "가" * 255


def test_read_actions_filters_by_run_and_since(db: Database) -> None:
    first = entry("run-1", NOW, target="prj-1")
    second = entry("run-1", NOW + dt.timedelta(microseconds=1), target="prj-2")
    other_run = entry("run-2", NOW + dt.timedelta(days=1), target="prj-3", status="failed",
                      detail="modeler DELETE failed with HTTP 409")
    for item in (first, second, other_run):
        db.log_action(item)

    assert db.read_actions() == [first, second, other_run]
    assert db.read_actions(run_id="run-1") == [first, second]
    assert db.read_actions(since=NOW + dt.timedelta(microseconds=1)) == [second, other_run]
    # `since` in another offset names the same instant.
    assert db.read_actions(run_id="run-1", since=second.created_at.astimezone(SEOUL)) == [second]
    assert db.read_actions(run_id="run-3") == []


def test_start_and_finish_run_are_read_back(db: Database) -> None:
    finished = NOW + dt.timedelta(minutes=3, microseconds=7)
    summary = {"planned": 3, "done": 2, "failed": 1, "skipped": 0}

    db.start_run(run_id="run-1", job="modeler", dry_run=True, now=NOW)
    started = db.read_run("run-1")
    db.finish_run(run_id="run-1", status="failed", summary=summary, now=finished)
    done = db.read_run("run-1")

    assert started == {"run_id": "run-1", "job": "modeler", "dry_run": True,
                       "status": "running", "started_at": NOW, "finished_at": None,
                       "summary": None}
    assert done is not None
    assert done["status"] == "failed"
    assert done["finished_at"] == finished
    assert done["finished_at"].tzinfo is dt.UTC
    assert json.loads(done["summary"]) == summary
    assert db.read_run("run-2") is None


def test_duplicate_run_id_raises_client_error(db: Database) -> None:
    db.start_run(run_id="run-1", job="modeler", dry_run=False, now=NOW)

    with pytest.raises(errors.ClientError) as caught:
        db.start_run(run_id="run-1", job="modeler", dry_run=False, now=NOW)

    assert "rejected a statement" in str(caught.value)
    assert caught.value.service == "database"


# Failures.


def test_unreachable_database_raises_unavailable_hiding_password() -> None:
    with pytest.raises(errors.Unavailable) as caught:
        Database.connect("mysql+pymysql://root:s3cret@127.0.0.1:1/test")

    message = str(caught.value)
    assert "s3cret" not in message
    assert message.startswith("database mysql+pymysql://root:***@127.0.0.1:1/test failed: ")
    assert caught.value.service == "database"

