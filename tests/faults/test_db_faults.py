"""Database faults: down at the start (nothing may change), and a connection killed between
two actions (the pool reconnects and the audit table stays complete)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from faultkit import JobRunner, aws_client, platform_writes
from sqlalchemy.pool import NullPool, QueuePool

from rpa import modeler
from rpa.clients import errors
from rpa.clients.db import AuditEntry, Database
from rpa.sandbox.runtime import Servers


@pytest.mark.parametrize("job", ["modeler", "mcm", "endsvc"])
def test_database_down_changes_nothing(sandbox: Servers, run_job: JobRunner,
                                       small_inventory: Path,
                                       monkeypatch: pytest.MonkeyPatch, job: str) -> None:
    # Port 9 (discard) on 127.0.0.1 has no database; the password must stay hidden.
    monkeypatch.setenv("RPA_DB_URL", "mysql+pymysql://rpa:db-Secret-9@127.0.0.1:9/platform")

    result = run_job(job, "--inventory", str(small_inventory))

    assert result.status == 1
    assert "database mysql+pymysql://rpa:***@127.0.0.1:9/platform failed" in result.err
    assert "db-Secret-9" not in result.err
    assert result.report == {}
    assert platform_writes(sandbox) == {}
    assert aws_client(sandbox, "s3").list_buckets()["Buckets"] == []
    assert aws_client(sandbox, "emr").list_clusters()["Clusters"] == []


def test_database_down_dry_run_tries_once(run_job: JobRunner, small_inventory: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The warm-up thread connects first, and the plan step raises the error it kept.
    monkeypatch.setenv("RPA_DB_URL", "mysql+pymysql://rpa:db-Secret-9@127.0.0.1:9/platform")
    attempts: list[str] = []
    connect = Database.connect

    def counted(url: str) -> Database:
        attempts.append(url)
        return connect(url)

    monkeypatch.setattr(Database, "connect", counted)

    result = run_job("mcm", "--dry-run", "--concurrency", "8",
                     "--inventory", str(small_inventory))

    assert result.status == 1
    assert len(attempts) == 1
    assert "database mysql+pymysql://rpa:***@127.0.0.1:9/platform failed" in result.err


@pytest.fixture
def pooled_connections() -> Iterator[list[int]]:
    """Server ids of the connections that SQLAlchemy's queue pools open during the test.

    The job's Database uses such a pool; the database locks open their connections without
    one, so they are left out.
    """
    opened: list[int] = []

    def record(dbapi_connection: Any, _: Any) -> None:
        # pymysql's connections tell their server id; SQLite's have none.
        if hasattr(dbapi_connection, "thread_id"):
            opened.append(dbapi_connection.thread_id())

    sa.event.listen(QueuePool, "connect", record)
    try:
        yield opened
    finally:
        sa.event.remove(QueuePool, "connect", record)


def kill_connections(url: str, ids: list[int]) -> int:
    """KILL the given connections from another connection; returns how many were alive."""
    engine = sa.create_engine(url, poolclass=NullPool)
    killed = 0
    try:
        with engine.connect() as conn:
            alive = set(conn.execute(sa.text(
                "SELECT id FROM information_schema.processlist")).scalars())
            for connection_id in sorted(set(ids) & alive):
                conn.execute(sa.text(f"KILL {int(connection_id)}"))
                killed += 1
    finally:
        engine.dispose()
    return killed


@pytest.mark.mariadb
def test_connection_killed_mid_run(sandbox: Servers, run_job: JobRunner, small_inventory: Path,
                                   mysql_url: str, monkeypatch: pytest.MonkeyPatch,
                                   pooled_connections: list[int]) -> None:
    monkeypatch.setenv("RPA_DB_URL", mysql_url)
    monkeypatch.setenv("RPA_CONCURRENCY", "1")
    applied: list[str] = []
    # (connections killed, connections opened until then)
    killed: list[tuple[int, int]] = []
    real_apply = modeler.ModelerJob.apply
    lock = threading.Lock()

    def apply_then_kill(self: modeler.ModelerJob, run: Any, action: Any) -> None:
        real_apply(self, run, action)
        with lock:
            applied.append(action.kind.value)
            if len(applied) == 3:
                killed.append((kill_connections(mysql_url, pooled_connections),
                               len(pooled_connections)))

    monkeypatch.setattr(modeler.ModelerJob, "apply", apply_then_kill)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 0, result.err
    count, opened_before = killed[0]
    assert count >= 1
    # The pool found its connection dead on checkout and opened a new one.
    assert len(pooled_connections) > opened_before
    engine = sa.create_engine(mysql_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT account, kind, target, status FROM rpa_action_log WHERE run_id = :run"),
            {"run": result.report["run_id"]}).all()
        status = conn.execute(sa.text("SELECT status FROM rpa_run WHERE run_id = :run"),
                              {"run": result.report["run_id"]}).scalar()
    engine.dispose()
    assert sorted(tuple(row) for row in rows) == sorted(result.outcomes())
    assert len(rows) == len(applied) > 3
    assert status == "succeeded"


def test_audit_lost_stops_changes(sandbox: Servers, run_job: JobRunner, small_inventory: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Once an audit row cannot be written, no further action is applied."""
    monkeypatch.setenv("RPA_CONCURRENCY", "2")
    applied: list[str] = []
    logged: list[str] = []
    real_apply = modeler.ModelerJob.apply
    real_log = Database.log_actions
    lock = threading.Lock()

    def apply(self: modeler.ModelerJob, run: Any, action: Any) -> None:
        real_apply(self, run, action)
        with lock:
            applied.append(action.target)

    def log_actions(self: Database, entries: Sequence[AuditEntry]) -> None:
        with lock:
            if len(logged) >= 3:
                raise errors.Unavailable("database sqlite:///sandbox.db failed: disk I/O "
                                         "error", service="database")
            logged.extend(entry.target for entry in entries)
        real_log(self, entries)

    monkeypatch.setattr(modeler.ModelerJob, "apply", apply)
    monkeypatch.setattr(Database, "log_actions", log_actions)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 1
    assert "database sqlite:///sandbox.db failed: disk I/O error" in result.err
    # Two workers: the rows written, at most one of them committed with the third, then the
    # action whose row failed and at most one that the other worker had under way.
    assert 3 <= len(logged) <= 4, logged
    assert len(applied) <= len(logged) + 2, applied
