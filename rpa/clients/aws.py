"""AWS through boto3: one session per run, clients with the standard retry mode.

Raw boto3 dicts stay in this module; callers get the value objects below and the exceptions
of `rpa.clients.errors`. Throttling is retried by botocore itself (standard mode) before it
reaches us as `Throttled`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from rpa.clients import errors
from rpa.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Error codes by the exception they become; codes not listed become a plain ClientError.
ERROR_CODES: dict[str, type[errors.ClientError]] = {
    "AccessDenied": errors.Forbidden,
    "AccessDeniedException": errors.Forbidden,
    "UnauthorizedOperation": errors.Forbidden,
    "Throttling": errors.Throttled,
    "ThrottlingException": errors.Throttled,
    "RequestLimitExceeded": errors.Throttled,
    "ValidationError": errors.InvalidRequest,
    "ValidationException": errors.InvalidRequest,
    "InvalidRequestException": errors.InvalidRequest,
    "NoSuchEntity": errors.NotFound,
    "NoSuchBucket": errors.NotFound,
    "ResourceInUse": errors.Conflict,
    "ScalingActivityInProgress": errors.Conflict,
    "AlreadyExists": errors.Conflict,
    "ServiceUnavailable": errors.Unavailable,
    "InternalFailure": errors.Unavailable,
}
# DescribeAutoScalingGroups takes at most this many names in one call.
GROUP_NAMES_PER_CALL = 100
# Prefix of the scheduled actions this tool owns; others on the same group are never touched.
SCHEDULED_ACTION_PREFIX = "rpa-"


@dataclass(frozen=True)
class GroupState:
    """An Auto Scaling group's sizes and how many of its instances are in service."""

    name: str
    min: int
    max: int
    desired: int
    in_service: int


@dataclass(frozen=True)
class ScheduledAction:
    """A one-off scheduled action that sets a group's desired capacity at `start_time`."""

    group: str
    name: str
    start_time: dt.datetime
    desired: int


def make_session(settings: Settings) -> boto3.Session:
    return boto3.Session(region_name=settings.aws_region)


def client_config(settings: Settings) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=max(10, settings.concurrency * 2),
    )


def call(service: str, operation: str, resource: str, function: Callable[[], T]) -> T:
    """Run one boto3 call, translating its errors; messages name the action and resource."""
    where = f"{service} {operation} on {resource}"
    try:
        return function()
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "Unknown")
        message = err.response.get("Error", {}).get("Message", "")[:200]
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        cls = ERROR_CODES.get(code, errors.Unavailable if (status or 0) >= 500
                              else errors.ClientError)
        raise cls(f"{where} failed: {code}: {message}", service=service, status=status) from err
    except botocore.exceptions.BotoCoreError as err:
        # Connection errors and timeouts, after botocore's own retries.
        raise errors.Unavailable(f"{where} failed: {type(err).__name__}: {err}",
                                 service=service) from err


class AutoScaling:
    """The Auto Scaling calls of the jobs."""

    service = "autoscaling"

    def __init__(self, session: boto3.Session, settings: Settings) -> None:
        self._client = session.client("autoscaling", config=client_config(settings),
                                      endpoint_url=settings.aws_endpoint_url)

    def describe_groups(self, names: Iterable[str]) -> dict[str, GroupState]:
        """Return the named groups that exist, with one call per 100 names (and per page)."""
        wanted = sorted(set(names))
        groups: dict[str, GroupState] = {}
        for start in range(0, len(wanted), GROUP_NAMES_PER_CALL):
            for group in self._describe_batch(wanted[start:start + GROUP_NAMES_PER_CALL]):
                groups[group.name] = group
        return groups

    def _describe_batch(self, names: list[str]) -> list[GroupState]:
        paginator = self._client.get_paginator("describe_auto_scaling_groups")
        pages = call(self.service, "DescribeAutoScalingGroups", f"{len(names)} groups",
                     lambda: list(paginator.paginate(AutoScalingGroupNames=names)))
        return [_group_state(group) for page in pages for group in page["AutoScalingGroups"]]

    def describe_scheduled_actions(self, groups: Iterable[str]) -> dict[str, list[ScheduledAction]]:
        """Return this tool's one-off scheduled actions of the named groups.

        One paginated listing of the region serves every group, instead of one call per group.
        """
        wanted = set(groups)
        found: dict[str, list[ScheduledAction]] = {name: [] for name in wanted}
        paginator = self._client.get_paginator("describe_scheduled_actions")
        pages = call(self.service, "DescribeScheduledActions", "all groups",
                     lambda: list(paginator.paginate()))
        for page in pages:
            for item in page["ScheduledUpdateGroupActions"]:
                group = item["AutoScalingGroupName"]
                name = item["ScheduledActionName"]
                if group in wanted and name.startswith(SCHEDULED_ACTION_PREFIX):
                    found[group].append(ScheduledAction(
                        group, name, item["StartTime"].astimezone(dt.UTC),
                        int(item.get("DesiredCapacity", -1))))
        return found

    def set_size(self, group: str, *, desired: int, min_size: int, max_size: int) -> None:
        call(self.service, "UpdateAutoScalingGroup", group, lambda: self._client
             .update_auto_scaling_group(AutoScalingGroupName=group, MinSize=min_size,
                                        MaxSize=max_size, DesiredCapacity=desired))

    def put_scheduled_action(self, action: ScheduledAction) -> None:
        call(self.service, "PutScheduledUpdateGroupAction", f"{action.group}/{action.name}",
             lambda: self._client.put_scheduled_update_group_action(
                 AutoScalingGroupName=action.group, ScheduledActionName=action.name,
                 StartTime=action.start_time, DesiredCapacity=action.desired))

    def delete_scheduled_action(self, group: str, name: str) -> None:
        try:
            call(self.service, "DeleteScheduledAction", f"{group}/{name}",
                 lambda: self._client.delete_scheduled_action(AutoScalingGroupName=group,
                                                              ScheduledActionName=name))
        except errors.InvalidRequest as err:
            # An action that already ran is gone; deleting it again is not a failure.
            if "not found" not in str(err).lower():
                raise
            log.debug("scheduled action %s/%s was already gone", group, name)


def _group_state(group: Any) -> GroupState:
    in_service = sum(1 for instance in group.get("Instances", [])
                     if instance.get("LifecycleState") == "InService")
    return GroupState(group["AutoScalingGroupName"], group["MinSize"], group["MaxSize"],
                      group["DesiredCapacity"], in_service)
