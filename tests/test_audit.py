"""Tests of `AuditWriter` on SQLite and on the local MariaDB (the `db` fixture)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from rpa.audit import AuditWriter
from rpa.clients import errors
from rpa.clients.db import AuditEntry, Database

NOW = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)
WORKERS = 8


def entry(number: int) -> AuditEntry:
    return AuditEntry(run_id="run-audit", job="modeler", account=f"trial_user{number:02d}",
                      kind="project.create", target=f"project-{number}", status="done",
                      detail="", created_at=NOW)


def test_record_returns_after_commit(db: Database) -> None:
    writer = AuditWriter(db)
    seen_after_return: dict[str, bool] = {}

    def record(number: int) -> None:
        writer.record(entry(number))
        written = {row.target for row in db.read_actions(run_id="run-audit")}
        seen_after_return[f"project-{number}"] = f"project-{number}" in written

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(record, range(40)))

    targets = [row.target for row in db.read_actions(run_id="run-audit")]
    assert sorted(targets) == sorted(f"project-{number}" for number in range(40))
    assert len(seen_after_return) == 40
    assert all(seen_after_return.values())


def test_waiting_rows_share_one_transaction(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[list[str]] = []
    first_write_started = threading.Event()
    others_waiting = threading.Event()
    real_write = Database.log_actions

    def log_actions(self: Database, entries: Sequence[AuditEntry]) -> None:
        batches.append([item.target for item in entries])
        if len(batches) == 1:
            first_write_started.set()
            assert others_waiting.wait(timeout=10)
        real_write(self, entries)

    monkeypatch.setattr(Database, "log_actions", log_actions)
    writer = AuditWriter(db)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        first = pool.submit(writer.record, entry(0))
        assert first_write_started.wait(timeout=10)
        rest = [pool.submit(writer.record, entry(number)) for number in range(1, WORKERS)]
        # The seven rows queue while the first transaction is held open.
        while len(writer._waiting) < WORKERS - 1:
            threading.Event().wait(0.01)
        others_waiting.set()
        for future in [first, *rest]:
            future.result(timeout=10)

    assert batches[0] == ["project-0"]
    assert sorted(batches[1]) == sorted(f"project-{n}" for n in range(1, WORKERS))
    assert len(batches) == 2
    assert len(db.read_actions(run_id="run-audit")) == WORKERS


def test_failed_write_raises_then_recovers(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = Database.log_actions
    fail = threading.Event()
    fail.set()

    def log_actions(self: Database, entries: Sequence[AuditEntry]) -> None:
        if fail.is_set():
            raise errors.Unavailable("database test failed: disk I/O error",
                                     service="database")
        real_write(self, entries)

    monkeypatch.setattr(Database, "log_actions", log_actions)
    writer = AuditWriter(db)
    with pytest.raises(errors.Unavailable, match="disk I/O error"):
        writer.record(entry(1))

    fail.clear()
    writer.record(entry(2))

    assert [row.target for row in db.read_actions(run_id="run-audit")] == ["project-2"]
