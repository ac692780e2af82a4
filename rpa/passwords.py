"""New passwords for released accounts, changed in CloudZ without ever being lost.

A password lives in two systems that cannot change together: CloudZ, where it works, and
the account's Vault record, where operators find it. The rotation keeps a working password in
Vault at every step:

1. write the new password to the record as `pending_password` (check-and-set);
2. change it in CloudZ, with a session opened with the current password;
3. promote it: `password` = new, `pending_password` removed, `rotated_at` set.

A crash after step 1 leaves the old password valid and stored; after step 2 the new one is
valid and stored as pending. A rerun that finds a pending password checks which of the two
CloudZ accepts and finishes from there.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rpa.clients.cloudz import CloudzClient
from rpa.records import RecordStore
from rpa.settings import Settings

log = logging.getLogger(__name__)


class RotationError(Exception):
    """The password could not be rotated safely; the message gives an operator the next step."""


@dataclass(frozen=True)
class PasswordPolicy:
    length: int
    specials: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordPolicy:
        return cls(settings.password_length, settings.password_specials)


def generate_password(policy: PasswordPolicy) -> str:
    """Draw a random password with `secrets` that has at least one upper-case letter,
    lower-case letter, digit and special character."""
    classes = [string.ascii_uppercase, string.ascii_lowercase, string.digits, policy.specials]
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(policy.length))
        if all(any(char in group for char in candidate) for group in classes):
            return candidate


@dataclass(frozen=True)
class Rotation:
    """Result of a rotation: `resumed` when it finished the work of an interrupted run."""

    resumed: bool


def rotate_password(store: RecordStore, cloudz: CloudzClient, account: str, *,
                    now: dt.datetime, generate: Callable[[], str]) -> Rotation:
    """Give `account` a new CloudZ password and store it in its record, crash-safely.

    Raises RotationError when CloudZ accepts neither the stored nor the pending password.
    """
    path = f"password/{account}"
    record = store.read(path).data
    username = str(record["username"])
    pending = record.get("pending_password")
    resumed = pending is not None
    if pending is not None:
        if cloudz.accepts(username, str(pending)):
            log.info("CloudZ already has the pending password; promoting it",
                     extra={"account": account})
            _promote(store, path, str(pending), now)
            return Rotation(resumed=True)
        if not cloudz.accepts(username, str(record["password"])):
            raise RotationError(
                f"CloudZ accepts neither the stored nor the pending password of {account}: "
                f"set a password in CloudZ by hand and store it in Vault {path}")
        new = str(pending)
    else:
        new = generate()
        store.update(path, lambda data: _with_pending(data, new, account))
    cloudz.change_password(username, current=str(record["password"]), new=new)
    _promote(store, path, new, now)
    return Rotation(resumed=resumed)


def _with_pending(data: dict[str, Any], new: str, account: str) -> dict[str, Any]:
    existing = data.get("pending_password")
    if existing is not None and existing != new:
        # Another run started a rotation meanwhile; its password may already be in CloudZ.
        raise RotationError(f"another run is rotating the password of {account}; rerun later")
    return {**data, "pending_password": new}


def _promote(store: RecordStore, path: str, new: str, now: dt.datetime) -> None:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in data.items() if key != "pending_password"}
        return {**kept, "password": new, "rotated_at": now.isoformat()}

    store.update(path, change)
