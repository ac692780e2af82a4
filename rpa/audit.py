"""The audit rows of an applying run, committed together when workers finish together.

Every applied action gets its `rpa_action_log` row before its worker starts another change,
so a run that stops at any moment has left unrecorded at most the change each worker had
under way. Eight workers that each committed their own row would queue behind one another's
transactions, because SQLite allows one writer at a time. Instead, the worker that finds no
write under way writes every row waiting at that moment in one transaction, and the others
wait for it. A row therefore costs a worker about one commit, however many workers there are.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rpa.clients.db import AuditEntry, Database


@dataclass
class _Slot:
    entry: AuditEntry
    written: bool = False
    error: BaseException | None = None


class AuditWriter:
    """Audit row writer shared by a run's workers; `record` returns once its row is committed."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._changed = threading.Condition()
        self._waiting: list[_Slot] = []
        self._writing = False

    def record(self, entry: AuditEntry) -> None:
        """Commit `entry`, alone or with the rows of other threads.

        Raises the exception of the failed write to every thread whose row was in it.
        """
        slot = _Slot(entry)
        with self._changed:
            self._waiting.append(slot)
            while not slot.written:
                if self._writing:
                    self._changed.wait()
                    continue
                batch, self._waiting = self._waiting, []
                self._writing = True
                self._changed.release()
                error: BaseException | None = None
                try:
                    self._database.log_actions([waiting.entry for waiting in batch])
                except BaseException as err:
                    # Kept, not raised here: every thread whose row was in the batch raises it,
                    # and none of them may be left waiting.
                    error = err
                finally:
                    self._changed.acquire()
                    self._writing = False
                    for waiting in batch:
                        waiting.written, waiting.error = True, error
                    self._changed.notify_all()
        if slot.error is not None:
            raise slot.error
