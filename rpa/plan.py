"""Plans and their outcomes: the records that pass from planning to apply to the report.

A job's planning function is pure: it takes desired state, observed state and `now` and
returns `Action`s. Apply turns each action into an `Outcome`. Nothing here calls a client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """Action kinds; the value is the name shown in plans, reports and the audit table."""

    PROJECT_CREATE = "project.create"
    PROJECT_UPDATE = "project.update"
    PROJECT_DELETE = "project.delete"
    WORKSPACE_STOP = "workspace.stop"
    DEPLOYMENT_STOP = "deployment.stop"
    ASG_SET_DESIRED = "asg.set_desired"
    ASG_SCHEDULE = "asg.schedule"
    ASG_UNSCHEDULE = "asg.unschedule"
    SCHEDULE_ROW_UPSERT = "schedule_row.upsert"
    BUCKET_CREATE = "bucket.create"
    BUCKET_CONFIGURE = "bucket.configure"
    IAM_CREATE = "iam.create"
    IAM_POLICY = "iam.policy"
    PIPELINE_REGISTER_STORAGE = "pipeline.register_storage"
    GROUP_ADD = "group.add"
    CLUSTER_CREATE = "cluster.create"
    CLUSTER_TERMINATE = "cluster.terminate"
    CLUSTER_TERMINATE_OFF_CORE = "cluster.terminate_off_core"
    CLUSTER_REGISTER = "cluster.register"
    CLUSTER_ASSIGN = "cluster.assign"
    CLUSTER_UNASSIGN = "cluster.unassign"
    MCM_SCHEDULE_PUT = "mcm_schedule.put"
    MCM_SCHEDULE_DELETE = "mcm_schedule.delete"
    PROJECT_ITEM_DELETE = "project.item_delete"
    SCHEDULE_ROW_DELETE = "schedule_row.delete"
    PIPELINE_ITEM_DELETE = "pipeline.item_delete"
    PIPELINE_STORAGE_DELETE = "pipeline.storage_delete"
    BUCKET_EMPTY = "bucket.empty"
    IAM_DELETE_ACCESS_KEY = "iam.delete_access_key"
    GROUP_REMOVE = "group.remove"
    PASSWORD_ROTATE = "password.rotate"
    ACCOUNT_RELEASE = "account.mark_released"


# Kinds that remove something a user may still want; they count against --max-deletes and
# are withheld when the records were not all read.
DESTRUCTIVE_KINDS = frozenset({
    Kind.PROJECT_DELETE, Kind.CLUSTER_TERMINATE, Kind.CLUSTER_TERMINATE_OFF_CORE,
    Kind.PROJECT_ITEM_DELETE, Kind.PIPELINE_ITEM_DELETE, Kind.PIPELINE_STORAGE_DELETE,
    Kind.BUCKET_EMPTY, Kind.IAM_DELETE_ACCESS_KEY,
})
# Destructive kinds that the schedule makes routine. They are withheld with the others when
# the records are incomplete, but they do not count against --max-deletes. The end of core
# time terminates the clusters of every account that shares the schedule at the same
# instant, often more than the limit. Counting them would block that every evening, or
# force a limit above the pool size, which would no longer protect anything else.
SCHEDULED_DESTRUCTIVE_KINDS = frozenset({Kind.CLUSTER_TERMINATE_OFF_CORE})


class Status(StrEnum):
    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Action:
    """One change to make: who it is for, what it changes, and from what to what.

    `detail` is a short language-neutral text such as "desired 0 -> 2". `params` carries what
    apply needs (never a secret). `blocked` is the reason a planned action will not be
    applied; such an action is reported as skipped.
    """

    account: str
    kind: Kind
    target: str
    detail: str = ""
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)
    blocked: str | None = None
    # Applied only when every earlier action of the same account was done, else skipped.
    # Marking an account released after a failed release step would hide the failure.
    needs_prior_success: bool = False

    @property
    def is_destructive(self) -> bool:
        return self.kind in DESTRUCTIVE_KINDS


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status
    error: str | None = None


@dataclass(frozen=True)
class Problem:
    """An account-level problem found while planning (a conflict, a missing group)."""

    account: str
    field: str
    message: str


def guard_deletions(
    actions: Sequence[Action],
    *,
    records_complete: bool,
    max_deletes: int,
    allow_mass_delete: bool,
    count: Callable[[Sequence[Action]], int] = len,
) -> tuple[list[Action], str | None]:
    """Block destructive actions that the run is not allowed to apply.

    Returns the actions, with `blocked` set on the withheld ones, and the reason when any was
    withheld. Nothing destructive is applied when a record could not be read or validated,
    and nothing when the plan deletes more than `max_deletes` without `allow_mass_delete`.
    Kinds in SCHEDULED_DESTRUCTIVE_KINDS are left out of that count and are not withheld
    by it. `count` turns the counted actions into a number of deletions: one per action by
    default, one per released account for the end-of-service job.
    """
    destructive = [action for action in actions if action.is_destructive]
    counted = [action for action in destructive
               if action.kind not in SCHEDULED_DESTRUCTIVE_KINDS]
    if not destructive:
        return list(actions), None
    if not records_complete:
        reason = "records incomplete: deletions withheld until every record reads and validates"
        withheld = DESTRUCTIVE_KINDS
    elif count(counted) > max_deletes and not allow_mass_delete:
        reason = (f"{count(counted)} deletions exceed --max-deletes {max_deletes}: "
                  "rerun with --allow-mass-delete to apply them")
        withheld = DESTRUCTIVE_KINDS - SCHEDULED_DESTRUCTIVE_KINDS
    else:
        return list(actions), None
    guarded = [replace(a, blocked=reason) if a.kind in withheld else a for a in actions]
    return guarded, reason


def count_by_status(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for outcome in outcomes:
        counts[outcome.status.value] += 1
    return counts
