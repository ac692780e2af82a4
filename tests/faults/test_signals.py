"""A run stopped in its middle: SIGTERM (Kubernetes at activeDeadlineSeconds) finishes the
action under way and exits 1; SIGKILL leaves its run `running` until the next run marks it.
Either way the next run completes the work and does nothing twice."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import (
    EXPIRED,
    JobRunner,
    finish,
    modeler_site,
    platform_writes,
    spawn_job,
    wait_for,
)

from rpa.clients.db import Database
from rpa.inventory import load_file
from rpa.job import INTERRUPTED
from rpa.sandbox.runtime import SANDBOX_URLS, Servers, site_key

CREATE = ("modeler", "POST", "/api/v1/projects")
# Projects the records of the small inventory list for its accounts in use.
WANTED_PROJECTS = 5
# 2026-11-20 is inside the period of trial_user36, which has expired on CORE.
IN_PERIOD = "2026-11-20T10:00+09:00"


def project_names(sandbox: Servers) -> list[str]:
    sites = {site_key(modeler_site(name)) for name in ("trial_user01", "trial_user02")}
    return sorted(p["name"] for site in sites for p in sandbox.platform.projects(site))


def run_status(sandbox: Servers, run_id: str) -> str | None:
    engine = sa.create_engine(sandbox.endpoints.db_url)
    try:
        with engine.connect() as conn:
            status: str | None = conn.execute(sa.text(
                "SELECT status FROM rpa_run WHERE run_id = :run"), {"run": run_id}).scalar()
            return status
    finally:
        engine.dispose()


def only_run_id(sandbox: Servers) -> str:
    engine = sa.create_engine(sandbox.endpoints.db_url)
    try:
        with engine.connect() as conn:
            run_id: str = conn.execute(sa.text("SELECT run_id FROM rpa_run")).scalar_one()
            return run_id
    finally:
        engine.dispose()


def test_sigterm_finishes_action_exits_1(slow_sandbox: Servers, run_job: JobRunner,
                                         small_inventory: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_CONCURRENCY", "1")
    process = spawn_job("modeler", "--inventory", str(small_inventory))
    wait_for(lambda: platform_writes(slow_sandbox)[CREATE] >= 2, what="two project creates")

    process.send_signal(signal.SIGTERM)
    stopped = finish(process)
    again = run_job("modeler", "--inventory", str(small_inventory))

    assert stopped.status == 1
    assert "received signal 15; finishing the current action and stopping" in stopped.err
    assert "Traceback" not in stopped.err
    statuses = [status for *_, status in stopped.outcomes()]
    assert "done" in statuses
    assert "failed" not in statuses
    skipped = [a for a in stopped.report["actions"] if a["status"] == "skipped"]
    assert skipped
    assert {a["error"] for a in skipped} == {INTERRUPTED}
    assert run_status(slow_sandbox, stopped.report["run_id"]) == "interrupted"
    # Every action has its audit row, the skipped ones included.
    database = Database.connect(slow_sandbox.endpoints.db_url)
    assert len(database.read_actions(run_id=stopped.report["run_id"])) == len(statuses)
    database.close()
    # The next run did the rest, and no project was created twice.
    assert again.status == 0
    done_before = {(a, kind, target) for a, kind, target, status in stopped.outcomes()
                   if status == "done"}
    assert done_before.isdisjoint({(a, kind, target) for a, kind, target, _
                                   in again.outcomes()})
    assert platform_writes(slow_sandbox)[CREATE] == WANTED_PROJECTS
    assert len(project_names(slow_sandbox)) == WANTED_PROJECTS


def test_sigkill_leaves_run_for_next(slow_sandbox: Servers, run_job: JobRunner,
                                     small_inventory: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_CONCURRENCY", "1")
    process = spawn_job("modeler", "--inventory", str(small_inventory))
    wait_for(lambda: platform_writes(slow_sandbox)[CREATE] >= 2, what="two project creates")

    process.send_signal(signal.SIGKILL)
    killed = finish(process)
    run_id = only_run_id(slow_sandbox)
    left = run_status(slow_sandbox, run_id)
    again = run_job("modeler", "--inventory", str(small_inventory))

    assert killed.status == -signal.SIGKILL
    assert left == "running"
    assert again.status == 0
    assert "marked 1 earlier modeler runs that never finished as interrupted" in again.err
    assert run_status(slow_sandbox, run_id) == "interrupted"
    assert platform_writes(slow_sandbox)[CREATE] == WANTED_PROJECTS
    assert len(project_names(slow_sandbox)) == WANTED_PROJECTS


def test_release_killed_then_completed(slow_sandbox: Servers, run_job: JobRunner,
                                       small_inventory: Path) -> None:
    """endsvc dies in the middle of a release; the next run finishes it, one password."""
    for job in ("modeler", "mcm"):
        assert run_job(job, "--account", EXPIRED, "--inventory", str(small_inventory),
                       now=IN_PERIOD).status == 0
    site = site_key(modeler_site(EXPIRED))
    process = spawn_job("endsvc", "--account", EXPIRED, "--inventory", str(small_inventory))
    wait_for(lambda: slow_sandbox.platform.calls[
        ("modeler", "DELETE", "/api/v1/projects/{project_id}")] >= 1, what="a project delete")

    process.send_signal(signal.SIGKILL)
    finish(process)
    again = run_job("endsvc", "--account", EXPIRED, "--inventory", str(small_inventory))
    last = run_job("endsvc", "--account", EXPIRED, "--inventory", str(small_inventory))

    assert again.status == 0, again.report.get("errors")
    assert last.report["actions"] == []
    assert EXPIRED not in {p["owner"] for p in slow_sandbox.platform.projects(site)}
    record = load_file(small_inventory)["password"][EXPIRED]
    cloudz = slow_sandbox.platform.accounts.cloudz_password(
        site_key(SANDBOX_URLS["cloudz_url"]), EXPIRED)
    assert cloudz is not None
    assert record["password"] == cloudz
    assert "pending_password" not in record
    assert record["released_at"]
    assert platform_writes(slow_sandbox)[
        ("cloudz", "POST", "/api/v1/users/{username}/password")] == 1
