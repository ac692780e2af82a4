"""Runs at the same time: two runs of one job, and two jobs on one account. A database lock
lets one act; the other waits RPA_LOCK_WAIT_SECONDS, then stops or skips the account."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import (
    CORE,
    EXPIRED,
    JobRunner,
    finish,
    platform_writes,
    spawn_job,
)

from rpa import locks
from rpa.clients.db import Database
from rpa.sandbox.runtime import SANDBOX_URLS, Servers, site_key

NAMESPACE = f"test-{os.getpid()}"
CREATE = ("modeler", "POST", "/api/v1/projects")
# Projects the records of the small inventory list for its accounts in use.
WANTED_PROJECTS = 5
NOW = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)
# 2026-11-20 is inside the period of trial_user36, which has expired on CORE.
IN_PERIOD = "2026-11-20T10:00+09:00"


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request: pytest.FixtureRequest, sandbox: Servers,
           monkeypatch: pytest.MonkeyPatch) -> str:
    """The database of the runs, and so of their locks: the sandbox's SQLite or MariaDB."""
    if request.param == "sqlite":
        return sandbox.endpoints.db_url
    url: str = request.getfixturevalue("mysql_url")
    monkeypatch.setenv("RPA_DB_URL", url)
    return url


@contextmanager
def holding(db_url: str, kind: str, key: str) -> Iterator[None]:
    """Hold a lock as another run would."""
    held = locks.backend_for(db_url).acquire(locks.lock_name(NAMESPACE, kind, key), 0)
    assert held is not None
    try:
        yield
    finally:
        held.release()


def run_rows(db_url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("rpa_run"):
                return []
            return [tuple(row) for row in conn.execute(sa.text(
                "SELECT job, status FROM rpa_run ORDER BY started_at"))]
    finally:
        engine.dispose()


def test_second_run_of_job_stops(db_url: str, sandbox: Servers, run_job: JobRunner,
                                 small_inventory: Path, monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    monkeypatch.setenv("RPA_LOCK_WAIT_SECONDS", "0.3")

    with holding(db_url, "job", "modeler"):
        blocked = run_job("modeler", "--inventory", str(small_inventory))
    after = run_job("modeler", "--inventory", str(small_inventory))

    assert blocked.status == 1
    assert f"another modeler run holds the lock rpa:{NAMESPACE}:job:modeler" in blocked.err
    assert "changed nothing" in blocked.err
    assert blocked.report == {}
    assert after.status == 0
    # Only the run that got the lock created the projects, and wrote a run row.
    assert platform_writes(sandbox)[CREATE] == WANTED_PROJECTS
    assert run_rows(db_url) == [("modeler", "succeeded")]


def test_dry_run_takes_no_lock(sandbox: Servers, run_job: JobRunner, small_inventory: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_LOCK_WAIT_SECONDS", "0")

    with holding(sandbox.endpoints.db_url, "job", "modeler"):
        result = run_job("modeler", "--dry-run", "--inventory", str(small_inventory))

    assert result.status == 0
    assert {status for *_, status in result.outcomes()} == {"planned"}


def test_locked_account_skipped(db_url: str, sandbox: Servers, run_job: JobRunner,
                                small_inventory: Path, monkeypatch: pytest.MonkeyPatch
                                ) -> None:
    """The modeler job holds trial_user36 while endsvc wants to release it."""
    monkeypatch.setenv("RPA_LOCK_WAIT_SECONDS", "0.3")

    with holding(db_url, "account", EXPIRED):
        blocked = run_job("endsvc", "--inventory", str(small_inventory))
    after = run_job("endsvc", "--inventory", str(small_inventory))

    assert blocked.status == 1
    assert blocked.statuses(EXPIRED) == {"skipped"}
    errors = [e for e in blocked.report["errors"] if e["account"] == EXPIRED]
    assert [e["field"] for e in errors] == ["lock"]
    assert errors[0]["message"] == ("account lock not taken: another run held it for 0.3 s; "
                                    "the next run applies these actions")
    assert after.status == 0
    assert after.statuses(EXPIRED) == {"done"}
    assert "released_at" in small_inventory.read_text(encoding="utf-8")


def test_stale_running_run_marked(sandbox: Servers, run_job: JobRunner,
                                  small_inventory: Path) -> None:
    database = Database.connect(sandbox.endpoints.db_url)
    database.migrate()
    # A modeler run that crashed, an mcm run that is still going, a modeler run that ended.
    database.start_run(run_id="crashed", job="modeler", dry_run=False, now=NOW)
    database.start_run(run_id="mcm-live", job="mcm", dry_run=False, now=NOW)
    database.start_run(run_id="ended", job="modeler", dry_run=False, now=NOW)
    database.finish_run(run_id="ended", status="failed", summary={}, now=NOW)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 0
    assert "marked 1 earlier modeler runs that never finished as interrupted" in result.err
    statuses = {run_id: (database.read_run(run_id) or {}).get("status")
                for run_id in ("crashed", "mcm-live", "ended")}
    assert statuses == {"crashed": "interrupted", "mcm-live": "running", "ended": "failed"}
    crashed = database.read_run("crashed") or {}
    assert crashed["finished_at"] is None
    database.close()


def test_shard_leaves_sibling_runs(sandbox: Servers, run_job: JobRunner,
                                   small_inventory: Path) -> None:
    """A shard runs beside its sibling, and marks no run while the sibling is live."""
    database = Database.connect(sandbox.endpoints.db_url)
    database.migrate()
    database.start_run(run_id="sibling", job="modeler", dry_run=False, now=NOW)

    with holding(sandbox.endpoints.db_url, "job", "modeler.1of2"):
        beside = run_job("modeler", "--shard", "0/2", "--inventory", str(small_inventory))
        live = (database.read_run("sibling") or {}).get("status")
    alone = run_job("modeler", "--shard", "0/2", "--inventory", str(small_inventory))

    assert beside.status == 0
    assert live == "running"
    assert alone.status == 0
    assert (database.read_run("sibling") or {}).get("status") == "interrupted"
    database.close()


@pytest.mark.parametrize(("key", "length"), [
    # a job name fits as it is
    ("modeler", len(f"rpa:{NAMESPACE}:job:modeler")),
    # a 64-character account name does not fit and is hashed
    ("a" * 64, 64),
])
def test_lock_name_fits_mysql(key: str, length: int) -> None:
    name = locks.lock_name(NAMESPACE, "job", key)

    assert len(name) == length
    assert len(name) <= locks.MAX_NAME_CHARS
    assert name != locks.lock_name(NAMESPACE, "job", key + "b")


def test_concurrent_runs_one_acts(slow_sandbox: Servers, small_inventory: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A manual run started with the scheduled one: two processes at once, no waiting."""
    Database.connect(slow_sandbox.endpoints.db_url).migrate()
    monkeypatch.setenv("RPA_LOCK_WAIT_SECONDS", "0")
    # One account at a time, so the run that gets the lock lasts well beyond the start-up
    # of the other.
    monkeypatch.setenv("RPA_CONCURRENCY", "1")
    processes = [spawn_job("modeler", "--inventory", str(small_inventory)) for _ in range(2)]

    results = sorted((finish(process) for process in processes), key=lambda r: r.status)

    assert [r.status for r in results] == [0, 1], [r.err for r in results]
    assert "another modeler run holds the lock" in results[1].err
    assert "Traceback" not in results[1].err
    assert results[1].report == {}
    assert platform_writes(slow_sandbox)[CREATE] == WANTED_PROJECTS
    names = [p["name"] for site in ("modeler-a.trial.accuinsight.example",
                                    "modeler-b.trial.accuinsight.example")
             for p in slow_sandbox.platform.projects(site)]
    assert len(names) == len(set(names)) == WANTED_PROJECTS


@pytest.mark.parametrize(("jobs", "account"), [
    # modeler and mcm change an account at once at the start of every core time
    ((("modeler", CORE), ("mcm", CORE)), "trial_user03"),
    # a modeler run by hand as of a day in the period, while endsvc releases the account
    ((("modeler", IN_PERIOD), ("endsvc", CORE)), EXPIRED),
])
def test_jobs_on_one_account_take_turns(slow_sandbox: Servers, small_inventory: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        jobs: tuple[tuple[str, str], ...], account: str
                                        ) -> None:
    database = Database.connect(slow_sandbox.endpoints.db_url)
    database.migrate()
    monkeypatch.setenv("RPA_LOCK_WAIT_SECONDS", "60")
    runs = [spawn_job(job, "--account", account, "--inventory", str(small_inventory), now=now)
            for job, now in jobs]

    results = [finish(process) for process in runs]

    assert [r.status for r in results] == [0, 0], [r.err for r in results]
    spans = {}
    for job, _ in jobs:
        times = [e.created_at for e in database.read_actions() if e.job == job]
        assert times, job
        spans[job] = (min(times), max(times))
    # The audit rows of one job all come before those of the other: they took turns.
    first, second = sorted(spans.values())
    assert first[1] < second[0]
    database.close()


def test_cloudz_untouched_while_locked(db_url: str, sandbox: Servers, run_job: JobRunner,
                                      small_inventory: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_LOCK_WAIT_SECONDS", "0")
    cloudz = site_key(SANDBOX_URLS["cloudz_url"])

    with holding(db_url, "account", EXPIRED):
        run_job("endsvc", "--inventory", str(small_inventory))

    assert sandbox.platform.accounts.cloudz_password(cloudz, EXPIRED) is None
    assert platform_writes(sandbox)[("cloudz", "POST", "/api/v1/users/{username}/password")] == 0
