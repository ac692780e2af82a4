"""The run of a job, shared by every entrypoint: read, plan, guard, print or apply, report.

A job module supplies a `Job`: `plan` observes the world and returns actions (its pure
planning function sits behind it), and `apply` carries out one action. This module owns the
rest: records, the deletion guard, the single dry-run gate, the job and account locks
(rpa/locks.py), per-account isolation of failures, the audit table, the report and the exit
status.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal, Protocol

from rpa.alerts import send_failure_alert
from rpa.audit import AuditWriter
from rpa.clients import errors
from rpa.clients.db import AuditEntry
from rpa.environment import Environment, EnvironmentError, open_environment
from rpa.i18n import Lang
from rpa.inventory import EmptyMountError, Inventory, InventoryFileError, validate_records
from rpa.locks import hold_account_lock, hold_job_lock, lock_problems
from rpa.logs import setup_logging
from rpa.plan import Action, Outcome, Problem, Status, count_by_status, guard_deletions
from rpa.report import EXIT_FAILED, EXIT_USAGE, RunReport, render_text
from rpa.schedule import load_calendars
from rpa.settings import Settings
from rpa.shard import Shard, select_shard

log = logging.getLogger(__name__)
INTERRUPTED = "run interrupted before this action"


@dataclass(frozen=True)
class RunOptions:
    """Options of one run from the command line; `now` is aware and fixed for the whole run."""

    now: dt.datetime
    dry_run: bool = False
    accounts: tuple[str, ...] = ()
    inventory_path: Path | None = None
    sandbox: bool = False
    output: Literal["text", "json"] = "text"
    lang: Lang = "ko"
    allow_mass_delete: bool = False
    # This pod's part of a run split over several pods; None reconciles every account.
    shard: Shard | None = None


@dataclass(frozen=True)
class Run:
    """Everything a job's plan and apply steps may use during one run."""

    job: str
    run_id: str
    options: RunOptions
    settings: Settings
    env: Environment

    @property
    def now(self) -> dt.datetime:
        return self.options.now


@dataclass
class PlanResult:
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class Job(Protocol):
    name: str

    def plan(self, run: Run, inventory: Inventory) -> PlanResult: ...

    def apply(self, run: Run, action: Action) -> None: ...

    # A job may also define `warm_up(run)`, which builds the clients of its observe step
    # while the records are read, and `count_deletions(actions)` for --max-deletes.


def count_deletions(job: Job, destructive: Sequence[Action]) -> int:
    """Count the deletions a plan makes for --max-deletes; a job may define its own count."""
    counter = getattr(job, "count_deletions", None)
    return int(counter(destructive)) if counter is not None else len(destructive)


class StopFlag:
    """Set by SIGTERM: the action under way finishes, the rest are skipped."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @contextmanager
    def on_sigterm(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            log.warning("received signal %d; finishing the current action and stopping", signum)
            self.set()

        previous = signal.signal(signal.SIGTERM, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


def execute(job: Job, options: RunOptions, settings: Settings) -> int:
    """Run `job` once and return the exit status (0 all done, 1 failures, 2 configuration)."""
    run_id = uuid.uuid4().hex[:12]
    setup_logging(job=job.name, run_id=run_id, dry_run=options.dry_run,
                  level=settings.log_level, fmt=settings.log_format)
    started = time.monotonic()
    log.info("starting %s at %s%s", job.name, options.now.isoformat(),
             " (dry-run: nothing will change)" if options.dry_run else "")
    try:
        with open_environment(settings, options) as env:
            run = Run(job.name, run_id, options, env.settings, env)
            with hold_job_lock(run):
                report = _run(job, run)
    except (EnvironmentError, EmptyMountError, InventoryFileError) as err:
        _fail(str(err))
        return EXIT_USAGE
    except errors.ClientError as err:
        _fail(str(err))
        return EXIT_FAILED
    report.seconds = time.monotonic() - started
    _print(report, options)
    # Posts only for a run with failures; a Slack failure is logged there and changes nothing.
    send_failure_alert(report, settings, sandbox=options.sandbox)
    summary = count_by_status(report.outcomes)
    log.info("finished %s: planned %d, done %d, failed %d, skipped %d, invalid accounts %d, "
             "%.1f s", job.name, summary["planned"], summary["done"], summary["failed"],
             summary["skipped"], len(report.record_errors), report.seconds)
    return report.exit_status()


def _run(job: Job, run: Run) -> RunReport:
    with _warming_up(job, run):
        return _reconcile(job, run)


@contextmanager
def _warming_up(job: Job, run: Run) -> Iterator[None]:
    """Prepare what the run needs and the records do not, while the records are read.

    The database connection, the job's AWS clients and the zone and holiday calendars each
    cost a round trip or tens of milliseconds of CPU, so above RPA_CONCURRENCY 1 a thread
    prepares them during the Vault reads. The run uses them through the environment, which
    waits for a client under way. A failure is left to the step that needs the client,
    which reports it.
    """
    if run.settings.concurrency <= 1:
        yield
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rpa-warm-up") as pool:
        pool.submit(_warm_up, job, run)
        yield


def _warm_up(job: Job, run: Run) -> None:
    load_calendars()
    try:
        run.env.database()
    except (errors.ClientError, EnvironmentError) as err:
        log.debug("warm-up: database connection failed, reported when the run needs it: %s",
                  err)
    build_clients = getattr(job, "warm_up", None)
    if build_clients is None:
        return
    try:
        build_clients(run)
    except Exception as err:  # the observe step builds the client again and reports it
        log.debug("warm-up: building the AWS clients failed, retried when needed: %s", err)


def _reconcile(job: Job, run: Run) -> RunReport:
    inventory = _read_inventory(run)
    for error in inventory.errors:
        log.error("invalid record %s: %s", error.field, error.message(),
                  extra={"account": error.account})
    run.env.database()  # connects now, so a database that is down stops the run before changes
    if run.env.sandbox is not None:
        run.env.prepare_sandbox(inventory)
    report = RunReport.start(job=run.job, run_id=run.run_id, dry_run=run.options.dry_run,
                             now=run.now, inventory=inventory)
    result = job.plan(run, inventory)
    for problem in result.problems:
        log.error("%s: %s", problem.field, problem.message, extra={"account": problem.account})
    actions, report.notice = guard_deletions(
        result.actions,
        records_complete=inventory.complete,
        max_deletes=run.settings.max_deletes,
        allow_mass_delete=run.options.allow_mass_delete,
        count=lambda destructive: count_deletions(job, destructive),
    )
    if report.notice:
        log.warning("%s", report.notice)
    report.problems = result.problems
    if run.options.dry_run:
        report.outcomes = [_planned(action) for action in actions]
        return report
    report.outcomes = _apply_all(job, run, actions)
    report.interrupted = any(o.error == INTERRUPTED for o in report.outcomes)
    report.problems = report.problems + lock_problems(report.outcomes)
    return report


def _read_inventory(run: Run) -> Inventory:
    """Read and validate the records; keep the accounts named and those of the shard."""
    raw, read_errors = run.env.records.read()
    inventory = validate_records(raw, read_errors=read_errors).select(list(run.options.accounts))
    shard = run.options.shard
    if shard is not None:
        total = len(inventory.accounts)
        inventory = select_shard(inventory, shard)
        log.info("shard %s: %d of %d accounts", shard, len(inventory.accounts), total)
    return inventory


def _planned(action: Action) -> Outcome:
    status = Status.SKIPPED if action.blocked else Status.PLANNED
    log.info("would %s %s %s", action.kind.value, action.target, action.detail,
             extra={"account": action.account})
    return Outcome(action, status)


def _apply_all(job: Job, run: Run, actions: Sequence[Action]) -> list[Outcome]:
    """Apply the accounts' actions concurrently; each account's in order, results in plan order."""
    database = run.env.database()
    database.start_run(run_id=run.run_id, job=run.job, dry_run=False, now=_utcnow())
    audit = AuditWriter(database)
    by_account: dict[str, list[tuple[int, Action]]] = defaultdict(list)
    for index, action in enumerate(actions):
        by_account[action.account].append((index, action))
    # The accounts with the most actions start first, so that the last ones to finish are
    # short and the workers stay busy to the end. The outcomes keep the plan's order.
    accounts = sorted(by_account.values(), key=_count_changes, reverse=True)
    results: dict[int, Outcome] = {}
    stop = StopFlag()
    status = "interrupted"
    try:
        with stop.on_sigterm(), ThreadPoolExecutor(max_workers=run.settings.concurrency) as pool:
            batches = pool.map(lambda items: _apply_account(job, run, items, stop, audit),
                               accounts)
            for batch in batches:
                results.update(batch)
        status = "interrupted" if stop.is_set() else "finished"
    finally:
        outcomes = [results[index] for index in sorted(results)]
        summary = count_by_status(outcomes)
        if status == "finished":
            status = "failed" if summary["failed"] else "succeeded"
        database.finish_run(run_id=run.run_id, status=status, summary=summary, now=_utcnow())
    return outcomes


def _count_changes(items: list[tuple[int, Action]]) -> int:
    return sum(1 for _, action in items if not action.blocked)


def _apply_account(job: Job, run: Run, items: list[tuple[int, Action]], stop: StopFlag,
                   audit: AuditWriter) -> dict[int, Outcome]:
    """Apply one account's actions holding its lock, which the other jobs share."""
    needed = any(not action.blocked for _, action in items)
    with hold_account_lock(run, items[0][1].account, needed=needed) as busy:
        return _apply_items(job, run, items, stop, audit, busy)


def _apply_items(job: Job, run: Run, items: list[tuple[int, Action]], stop: StopFlag,
                 audit: AuditWriter, busy: str | None) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    for index, action in items:
        earlier_failed = any(o.status is not Status.DONE for o in outcomes.values())
        if busy is not None and not action.blocked:
            outcome = Outcome(action, Status.SKIPPED, busy)
        elif action.needs_prior_success and earlier_failed:
            outcome = Outcome(action, Status.SKIPPED, "an earlier action of this account was "
                              "not done")
        else:
            outcome = _apply_one(job, run, action, stop)
        outcomes[index] = outcome
        try:
            audit.record(AuditEntry(
                run_id=run.run_id, job=run.job, account=action.account,
                kind=action.kind.value, target=action.target, status=outcome.status.value,
                detail=_audit_detail(action, outcome), created_at=_utcnow()))
        except errors.ClientError:
            # No change may go unrecorded: the other workers, and the accounts still
            # queued, skip their remaining actions, and the run fails.
            stop.set()
            raise
    return outcomes


def _apply_one(job: Job, run: Run, action: Action, stop: StopFlag) -> Outcome:
    extra = {"account": action.account}
    if action.blocked:
        return Outcome(action, Status.SKIPPED, action.blocked)
    if stop.is_set():
        return Outcome(action, Status.SKIPPED, INTERRUPTED)
    try:
        job.apply(run, action)
    except errors.ClientError as err:
        log.error("%s %s failed: %s", action.kind.value, action.target, err, extra=extra)
        return Outcome(action, Status.FAILED, str(err))
    log.info("%s %s done %s", action.kind.value, action.target, action.detail, extra=extra)
    return Outcome(action, Status.DONE)


def _audit_detail(action: Action, outcome: Outcome) -> str:
    return action.detail + (f" | {outcome.error}" if outcome.error else "")


def _print(report: RunReport, options: RunOptions) -> None:
    if options.output == "json":
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render_text(report, options.lang))


def _fail(message: str) -> None:
    log.error("%s", message)
    print(f"error: {message}", file=sys.stderr)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


AccountFilter = Callable[[str], bool]
