"""Shards of a run: which accounts one pod of a Kubernetes Indexed Job reconciles.

A run can be split over COUNT pods, each with an INDEX from 0 to COUNT - 1, given by
`--shard INDEX/COUNT` or by Kubernetes' JOB_COMPLETION_INDEX together with RPA_SHARD_COUNT.
An account belongs to the shard that a SHA-256 hash of its name picks. The split therefore
depends only on the name and COUNT: it is the same in every pod and every run, whatever the
order or number of records, and each account belongs to exactly one shard. Python's `hash()`
is salted per process, so it would split the accounts differently in each pod.

A pod keeps only the accounts of its shard, so it plans, changes and deletes nothing of the
others. Site-wide listings are still read once per pod.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rpa.inventory import Inventory

# The variable that Kubernetes sets in each pod of an Indexed Job.
INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
SHARD_TEXT = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{1,6})\s*$")


class ShardError(ValueError):
    """The shard given on the command line or in the environment is invalid."""


@dataclass(frozen=True)
class Shard:
    """One part of a run split over `count` pods, numbered by `index` from 0."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardError(f"shard count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardError(f"shard index must be from 0 to {self.count - 1}, got "
                             f"{self.index}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, account: str) -> bool:
        return shard_index(account, self.count) == self.index


def shard_index(account: str, count: int) -> int:
    """Return the shard (0 to count - 1) of an account name."""
    digest = hashlib.sha256(account.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """Parse `INDEX/COUNT`, such as `2/8`. Raises ShardError naming the problem."""
    match = SHARD_TEXT.match(text)
    if match is None:
        raise ShardError(f"invalid shard {text!r}: use INDEX/COUNT with whole numbers, "
                         "e.g. 0/4")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_environment(environ: Mapping[str, str], count: int) -> Shard | None:
    """Return the shard of an Indexed Job's pod, or None for a run that is not split.

    JOB_COMPLETION_INDEX gives the index and RPA_SHARD_COUNT (`count`) the number of shards.
    A count above 1 without an index is an error, because that pod would reconcile every
    account while the other pods reconcile theirs.
    """
    text = environ.get(INDEX_VARIABLE)
    if text is None:
        if count > 1:
            raise ShardError(f"RPA_SHARD_COUNT is {count} but {INDEX_VARIABLE} is not set: "
                             "run the job as an Indexed Job or pass --shard INDEX/COUNT")
        return None
    if not text.strip().isdigit():
        raise ShardError(f"invalid {INDEX_VARIABLE} {text!r}: expected a whole number")
    index = int(text)
    if index >= count:
        raise ShardError(f"{INDEX_VARIABLE} is {index} but RPA_SHARD_COUNT is {count}: set "
                         "RPA_SHARD_COUNT to the Job's completions")
    return Shard(index, count) if count > 1 else None


def select_shard(inventory: Inventory, shard: Shard) -> Inventory:
    """Keep the accounts and record errors of one shard.

    `complete` stays as it was for all records: an unreadable record of another shard still
    withholds deletions here, as it does in a run that is not split.
    """
    accounts = {name: account for name, account in inventory.accounts.items()
                if shard.owns(name)}
    errors = [error for error in inventory.errors if shard.owns(error.account)]
    return Inventory(accounts, errors, complete=inventory.complete)
