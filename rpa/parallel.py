"""Bounded concurrency for the observe steps: many independent reads, at most N at once.

A run is bound by network round trips, so reads that AWS or the platform offer only per
resource (an S3 bucket's settings, an IAM inline policy) are sent concurrently, with the
same bound as the apply step (`RPA_CONCURRENCY`). Results keep the order of their inputs, so
a plan built from them does not depend on which call came back first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from rpa.clients import errors

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_bounded(function: Callable[[Item], Result], items: Sequence[Item], *,
                workers: int) -> list[Result]:
    """Call `function` on every item, at most `workers` at once, and return results in order.

    The first exception propagates after the calls under way have ended; calls not yet
    started are cancelled. With one worker the calls run in this thread, one after another.
    """
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)),
                              thread_name_prefix="rpa-read")
    try:
        return list(pool.map(function, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def read_all(reads: Sequence[Callable[[], Result]], *, workers: int
             ) -> list[Result | errors.ClientError]:
    """Run independent reads, at most `workers` at once, and return each result or its error.

    A failed read does not stop the others: its `ClientError` takes its place in the list,
    so the caller decides what the failure means for the resource it read.
    """
    def attempt(read: Callable[[], Result]) -> Result | errors.ClientError:
        try:
            return read()
        except errors.ClientError as err:
            return err

    return map_bounded(attempt, reads, workers=workers)
