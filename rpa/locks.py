"""Database locks that keep two runs from changing the same things at the same time.

A run that applies its plan holds the lock of its job from before it reads the records until
it ends. A second run of the same job, such as a manual `kubectl create job --from` during
the scheduled one, waits up to RPA_LOCK_WAIT_SECONDS and then stops without changing
anything (exit status 1). While a run applies one account's actions it holds the lock of
that account, which the modeler, mcm and endsvc jobs share, so two jobs never change one
account at once. An account whose lock stays taken is skipped with a problem in the report
(exit status 1) and applied by the next run. A dry-run takes no lock.

On MySQL and MariaDB the locks are GET_LOCK user locks, each on a connection of its own
that is closed with the lock, so a killed process never leaves a lock behind. On SQLite
(the sandbox) they are flock() locks on files in a folder beside the database file, which the
kernel also releases when the process ends.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from rpa.clients import errors
from rpa.plan import Outcome, Problem, Status
from rpa.shard import Shard

if TYPE_CHECKING:
    from rpa.job import Run

log = logging.getLogger(__name__)

SERVICE = "database"
# MySQL rejects user lock names longer than 64 characters; longer ones are hashed.
MAX_NAME_CHARS = 64
# How often a file lock is tried again while it is taken.
FILE_LOCK_POLL_SECONDS = 0.05
# Start of the outcome of an action skipped because its account's lock was not taken.
ACCOUNT_LOCK_NOT_TAKEN = "account lock not taken"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


class LockBusy(errors.Conflict):
    """Another run held the lock for the whole wait."""


class HeldLock(Protocol):
    def release(self) -> None: ...


class Backend(Protocol):
    def acquire(self, name: str, wait_seconds: float) -> HeldLock | None: ...


def lock_name(namespace: str, kind: str, key: str) -> str:
    """Return `rpa:<namespace>:<kind>:<key>`, hashed when longer than MySQL accepts."""
    name = f"rpa:{namespace}:{kind}:{key}"
    if len(name) <= MAX_NAME_CHARS:
        return name
    return "rpa:" + hashlib.sha256(name.encode()).hexdigest()[:MAX_NAME_CHARS - 4]


class _Connection:
    # NOTE: the lock ends with its connection. If the server drops the connection while a run
    # holds a job lock, the lock is gone without notice; the account locks still apply.
    def __init__(self, conn: sa.Connection, name: str) -> None:
        self._conn = conn
        self._name = name

    def release(self) -> None:
        try:
            self._conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": self._name})
        except sa.exc.DBAPIError as err:
            # Closing the connection below releases the lock all the same.
            log.warning("could not release database lock %s: %s", self._name, err.orig)
        finally:
            self._conn.close()


class MysqlLocks:
    """GET_LOCK user locks; a connection per held lock, opened without a pool."""

    def __init__(self, url: sa.URL) -> None:
        self._engine = sa.create_engine(url, poolclass=NullPool,
                                        connect_args={"connect_timeout": 10})

    def acquire(self, name: str, wait_seconds: float) -> HeldLock | None:
        where = self._engine.url.render_as_string(hide_password=True)
        try:
            conn = self._engine.connect()
        except sa.exc.DBAPIError as err:
            raise errors.Unavailable(f"database {where} failed while taking lock {name}: "
                                     f"{_first_line(err.orig)}", service=SERVICE) from err
        try:
            got = conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"),
                               {"name": name, "wait": wait_seconds}).scalar()
        except sa.exc.DBAPIError as err:
            conn.close()
            raise errors.Unavailable(f"database {where} failed while taking lock {name}: "
                                     f"{_first_line(err.orig)}", service=SERVICE) from err
        if got == 1:
            return _Connection(conn, name)
        conn.close()
        return None


class _File:
    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


class FileLocks:
    """flock() locks on one file per lock name.

    Each acquire opens the file again, so two threads of one process exclude each other as
    two processes do.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def acquire(self, name: str, wait_seconds: float) -> HeldLock | None:
        self._folder.mkdir(parents=True, exist_ok=True)
        file_name = name if _SAFE_NAME.fullmatch(name) else hashlib.sha256(
            name.encode()).hexdigest()
        handle = (self._folder / f"{file_name}.lock").open("w", encoding="utf-8")
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return _File(handle)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    return None
                time.sleep(FILE_LOCK_POLL_SECONDS)


class _Local:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def release(self) -> None:
        self._lock.release()


class LocalLocks:
    """Locks of this process only, for a database that lives in it (SQLite in memory)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def acquire(self, name: str, wait_seconds: float) -> HeldLock | None:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        return _Local(lock) if lock.acquire(timeout=wait_seconds) else None


@functools.lru_cache(maxsize=16)
def backend_for(url: str) -> Backend:
    """Return the locks that go with a database URL, one backend per URL for the process."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "mysql":
        return MysqlLocks(parsed)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database or "")
        return FileLocks(database.with_name(database.name + ".locks"))
    return LocalLocks()


def _namespace(run: Run) -> str:
    if run.settings.lock_namespace:
        return run.settings.lock_namespace
    assert run.settings.db_url is not None
    return sa.make_url(run.settings.db_url.get_secret_value()).database or "default"


def _backend(run: Run) -> Backend:
    assert run.settings.db_url is not None
    return backend_for(run.settings.db_url.get_secret_value())


@contextmanager
def hold_job_lock(run: Run) -> Iterator[None]:
    """Hold the job's lock for the block. Under it, connect to the database and mark the
    job's runs left `running` as interrupted. A dry-run takes no lock.

    Raises LockBusy when another run of the job keeps the lock for RPA_LOCK_WAIT_SECONDS,
    and `errors.Unavailable` when the database cannot be reached.
    """
    if run.options.dry_run:
        yield
        return
    if run.settings.db_url is None:
        run.env.database()  # raises the error that names RPA_DB_URL
    wait = run.settings.lock_wait_seconds
    shard = run.options.shard
    name = lock_name(_namespace(run), "job", _job_key(run.job, shard))
    held = _backend(run).acquire(name, wait)
    if held is None:
        raise LockBusy(f"another {run.job} run holds the lock {name}: this run stopped after "
                       f"waiting {wait:g} s and changed nothing; the next run does the work",
                       service=SERVICE)
    try:
        # Connected, and migrated, under the lock: two runs of a new deployment would
        # otherwise apply the same migration at once.
        database = run.env.database()
        if _siblings_idle(run, shard):
            stale = database.mark_interrupted_runs(job=run.job)
            if stale:
                log.warning("marked %d earlier %s runs that never finished as interrupted",
                            stale, run.job)
        yield
    finally:
        held.release()


def _job_key(job: str, shard: Shard | None) -> str:
    """Return the job's lock key: one per shard of a split run, so the shards run side by
    side."""
    if shard is None or shard.count == 1:
        return job
    return f"{job}.{shard.index}of{shard.count}"


def _siblings_idle(run: Run, shard: Shard | None) -> bool:
    """Return True when no other shard of the run holds its lock, tried without waiting.

    The run table does not record shards, so a shard may mark runs left `running` only when
    none of its siblings is live.
    """
    if shard is None or shard.count == 1:
        return True
    backend = _backend(run)
    held_siblings: list[HeldLock] = []
    try:
        for index in range(shard.count):
            if index == shard.index:
                continue
            sibling = Shard(index, shard.count)
            held = backend.acquire(lock_name(_namespace(run), "job",
                                             _job_key(run.job, sibling)), 0)
            if held is None:
                return False
            held_siblings.append(held)
        return True
    finally:
        for held in held_siblings:
            held.release()


@contextmanager
def hold_account_lock(run: Run, account: str, *, needed: bool = True) -> Iterator[str | None]:
    """Hold the account's lock for the block; yields None when held (or not `needed`),
    otherwise the reason it was not, for the account's skipped actions.

    NOTE: a run that waited applies the plan it made before the wait. Two jobs plan the same
    account only for different `--now` values (one in use, the other expired), so the plan
    is stale only then.
    """
    if not needed:
        yield None
        return
    wait = run.settings.lock_wait_seconds
    name = lock_name(_namespace(run), "account", account)
    try:
        held = _backend(run).acquire(name, wait)
    except errors.ClientError as err:
        log.error("%s: %s", ACCOUNT_LOCK_NOT_TAKEN, err, extra={"account": account})
        yield f"{ACCOUNT_LOCK_NOT_TAKEN}: {err}; the next run applies these actions"
        return
    if held is None:
        log.error("%s: another run held it for %g s", ACCOUNT_LOCK_NOT_TAKEN, wait,
                  extra={"account": account})
        yield (f"{ACCOUNT_LOCK_NOT_TAKEN}: another run held it for {wait:g} s; the next run "
               "applies these actions")
        return
    try:
        yield None
    finally:
        held.release()


def lock_problems(outcomes: Iterable[Outcome]) -> list[Problem]:
    """Build one problem per account whose actions were skipped because of its lock."""
    problems: dict[str, Problem] = {}
    for outcome in outcomes:
        account = outcome.action.account
        if (outcome.status is Status.SKIPPED and outcome.error
                and outcome.error.startswith(ACCOUNT_LOCK_NOT_TAKEN)
                and account not in problems):
            problems[account] = Problem(account, "lock", outcome.error)
    return list(problems.values())


def _first_line(err: BaseException | None) -> str:
    text = str(err) if err is not None else ""
    return (text.splitlines() or [type(err).__name__])[0][:200]
