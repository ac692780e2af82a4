"""Writable account records: Vault KV v2 in production, an inventory file otherwise.

Jobs that change a record (a rotated password, `released_at`) go through `RecordStore.update`,
which applies a change function to the latest fields and keeps every field it does not
touch. On Vault that is a check-and-set loop; on a file it is an exclusive lock around
read, change and an atomic replace.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import yaml

from rpa.clients import errors
from rpa.clients.vault import Secret, VaultClient
from rpa.inventory import load_file

Change = Callable[[dict[str, Any]], dict[str, Any]]


class RecordStore(Protocol):
    def read(self, path: str) -> Secret: ...

    def update(self, path: str, change: Change) -> Secret: ...


class FileRecordStore:
    """Records in an inventory file; `path` is `<folder>/<account>` as in Vault.

    NOTE: rewriting the file drops its YAML comments, so the sandbox works on a copy of the
    example inventory, never on the file in the repository.
    """

    def __init__(self, file: Path) -> None:
        self.file = file

    def read(self, path: str) -> Secret:
        folder, name = _split(path)
        record = load_file(self.file).get(folder, {}).get(name)
        if not isinstance(record, dict):
            raise errors.NotFound(f"record {path} not found in {self.file}", service="inventory")
        return Secret(path, dict(record), 0)

    def update(self, path: str, change: Change) -> Secret:
        folder, name = _split(path)
        with self._locked():
            raw = load_file(self.file)
            current = raw.get(folder, {}).get(name)
            if not isinstance(current, dict):
                raise errors.NotFound(f"record {path} not found in {self.file}",
                                      service="inventory")
            wanted = change(dict(current))
            if wanted != current:
                raw[folder][name] = wanted
                self._write(raw)
        return Secret(path, wanted, 0)

    def create(self, path: str, data: dict[str, Any]) -> Secret:
        """Add a record that does not exist yet; raises Conflict when it does."""
        folder, name = _split(path)
        with self._locked():
            raw = load_file(self.file)
            if name in raw.get(folder, {}):
                raise errors.Conflict(f"record {path} already exists in {self.file}",
                                      service="inventory")
            raw.setdefault(folder, {})[name] = dict(data)
            self._write(raw)
        return Secret(path, dict(data), 0)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.file.with_name(self.file.name + ".lock")
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, raw: dict[str, Any]) -> None:
        text = yaml.dump(raw, Dumper=_NoAliasDumper, allow_unicode=True, sort_keys=False)
        # Rewritten in full; the lock keeps a concurrent writer of the same file out.
        handle, temporary = tempfile.mkstemp(dir=self.file.parent, prefix=".inventory-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as output:
                output.write(text)
            # The file contains passwords, so only its owner may read it.
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def create_record(store: RecordStore, path: str, data: dict[str, Any]) -> Secret:
    """Write a record that must not exist yet: check-and-set version 0 on Vault.

    Raises Conflict when another writer created it first.
    """
    if isinstance(store, VaultClient):
        return Secret(path, dict(data), store.write(path, data, cas=0))
    if isinstance(store, FileRecordStore):
        return store.create(path, data)
    raise TypeError(f"cannot create records in {type(store).__name__}")


def _split(path: str) -> tuple[str, str]:
    folder, _, name = path.partition("/")
    if not folder or not name:
        raise ValueError(f"record path {path!r} must be <folder>/<account>")
    return folder, name
