"""Tests of the Auto Scaling client on moto, and of the error translation in `call()`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from rpa.clients import errors
from rpa.clients.aws import (
    GROUP_NAMES_PER_CALL,
    AutoScaling,
    GroupState,
    ScheduledAction,
    call,
    client_config,
    make_session,
)
from rpa.settings import Settings

REGION = "ap-northeast-2"
SOON = dt.datetime(2030, 1, 7, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings() -> Settings:
    return Settings(aws_region=REGION, aws_max_attempts=3)


@pytest.fixture
def raw_client() -> Iterator[Any]:
    """A plain boto3 client on moto, for building the groups that the tests read."""
    with mock_aws():
        client = boto3.client("autoscaling", region_name=REGION)
        client.create_launch_configuration(LaunchConfigurationName="workers",
                                           ImageId="ami-12345678", InstanceType="t3.micro")
        yield client


@pytest.fixture
def autoscaling(raw_client: Any, settings: Settings) -> AutoScaling:
    return AutoScaling(make_session(settings), settings)


def create_group(raw_client: Any, name: str, *, desired: int = 0, min_size: int = 0,
                 max_size: int = 4) -> None:
    raw_client.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName="workers", MinSize=min_size,
        MaxSize=max_size, DesiredCapacity=desired, AvailabilityZones=[f"{REGION}a"])


def record_names_per_call(autoscaling: AutoScaling) -> list[list[str]]:
    """Record the group names of every DescribeAutoScalingGroups call the client sends."""
    batches: list[list[str]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        batches.append(list(params.get("AutoScalingGroupNames", [])))

    autoscaling._client.meta.events.register(
        "provide-client-params.autoscaling.DescribeAutoScalingGroups", remember)
    return batches


def client_error(code: str, status: int, message: str = "the reason") -> Exception:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        "UpdateAutoScalingGroup",
    )


def fail_with(error: Exception) -> Any:
    """Return a function that raises `error`, whatever it is called with."""
    def function(*args: Any, **kwargs: Any) -> None:
        raise error
    return function


# Groups.


def test_describe_groups_batches_names_and_returns_all(raw_client: Any,
                                                       autoscaling: AutoScaling) -> None:
    names = [f"rpa-workers-{index:03d}" for index in range(120)]
    for name in names:
        create_group(raw_client, name)
    batches = record_names_per_call(autoscaling)

    groups = autoscaling.describe_groups(names)

    assert sorted(groups) == names
    assert groups["rpa-workers-007"] == GroupState("rpa-workers-007", 0, 4, 0, 0)
    # Each batch may take more than one page; every call names at most the maximum.
    assert {tuple(batch) for batch in batches} == {tuple(names[:GROUP_NAMES_PER_CALL]),
                                                   tuple(names[GROUP_NAMES_PER_CALL:])}


def test_describe_groups_leaves_out_missing_names(raw_client: Any, autoscaling: AutoScaling
                                                  ) -> None:
    create_group(raw_client, "present")

    groups = autoscaling.describe_groups(["present", "absent", "present"])

    assert list(groups) == ["present"]


def test_describe_groups_of_no_names_makes_no_call(autoscaling: AutoScaling) -> None:
    batches = record_names_per_call(autoscaling)

    assert autoscaling.describe_groups([]) == {}
    assert batches == []


def test_set_size_changes_min_max_and_desired(raw_client: Any, autoscaling: AutoScaling) -> None:
    create_group(raw_client, "workers-a", desired=0, min_size=0, max_size=1)

    autoscaling.set_size("workers-a", desired=0, min_size=0, max_size=6)

    group = raw_client.describe_auto_scaling_groups(
        AutoScalingGroupNames=["workers-a"])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 6, 0)
    assert autoscaling.describe_groups(["workers-a"])["workers-a"].max == 6


def test_set_size_of_missing_group_raises_invalid_request(autoscaling: AutoScaling) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        autoscaling.set_size("absent", desired=0, min_size=0, max_size=1)

    assert str(caught.value).startswith("autoscaling UpdateAutoScalingGroup on absent failed: "
                                        "ValidationError")


# Scheduled actions.


def test_describe_scheduled_actions_returns_only_own_actions(raw_client: Any,
                                                             autoscaling: AutoScaling) -> None:
    for name in ("workers-a", "workers-b", "workers-c"):
        create_group(raw_client, name)
    # Names follow the jobs' rpa-<account>-<switch>-<time>; moto 5 keys actions by name
    # alone, so two groups must not share one.
    on_a = ScheduledAction("workers-a", "rpa-user01-on-20300107T0000Z", SOON, 2)
    off_a = ScheduledAction("workers-a", "rpa-user01-off-20300107T0900Z",
                            SOON + dt.timedelta(hours=9), 0)
    on_c = ScheduledAction("workers-c", "rpa-user03-on-20300107T0000Z", SOON, 1)
    for action in (on_a, off_a, on_c):
        autoscaling.put_scheduled_action(action)
    # Another team's action on the same group, which the tool must never see or touch.
    raw_client.put_scheduled_update_group_action(
        AutoScalingGroupName="workers-a", ScheduledActionName="nightly-batch",
        StartTime=SOON, DesiredCapacity=4)

    found = autoscaling.describe_scheduled_actions(["workers-a", "workers-b"])

    assert set(found) == {"workers-a", "workers-b"}
    assert sorted(found["workers-a"], key=lambda action: action.name) == [off_a, on_a]
    assert found["workers-b"] == []
    assert all(action.start_time.tzinfo == dt.UTC for action in found["workers-a"])


def test_put_scheduled_action_converts_start_time_to_utc(raw_client: Any,
                                                         autoscaling: AutoScaling) -> None:
    create_group(raw_client, "workers-a")
    seoul = dt.timezone(dt.timedelta(hours=9))

    autoscaling.put_scheduled_action(
        ScheduledAction("workers-a", "rpa-on", SOON.astimezone(seoul), 3))

    [action] = autoscaling.describe_scheduled_actions(["workers-a"])["workers-a"]
    assert action == ScheduledAction("workers-a", "rpa-on", SOON, 3)


def test_delete_scheduled_action_removes_it(raw_client: Any, autoscaling: AutoScaling) -> None:
    create_group(raw_client, "workers-a")
    autoscaling.put_scheduled_action(ScheduledAction("workers-a", "rpa-on", SOON, 2))
    autoscaling.put_scheduled_action(ScheduledAction("workers-a", "rpa-off", SOON, 0))

    autoscaling.delete_scheduled_action("workers-a", "rpa-on")

    names = [action.name for action in
             autoscaling.describe_scheduled_actions(["workers-a"])["workers-a"]]
    assert names == ["rpa-off"]


def test_deleting_missing_scheduled_action_is_not_an_error(raw_client: Any,
                                                           autoscaling: AutoScaling) -> None:
    create_group(raw_client, "workers-a")

    autoscaling.delete_scheduled_action("workers-a", "rpa-never-made")

    assert autoscaling.describe_scheduled_actions(["workers-a"]) == {"workers-a": []}


def test_delete_scheduled_action_keeps_other_validation_errors(
    autoscaling: AutoScaling, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(autoscaling._client, "delete_scheduled_action", fail_with(
        client_error("ValidationError", 400, "Group name must not be empty")))

    with pytest.raises(errors.InvalidRequest, match="Group name must not be empty"):
        autoscaling.delete_scheduled_action("", "rpa-on")


# Error translation.


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, errors.Forbidden),  # IAM policy lacks the action
        ("UnauthorizedOperation", 403, errors.Forbidden),  # EC2's name for the same
        ("Throttling", 400, errors.Throttled),  # still throttled after botocore's retries
        ("RequestLimitExceeded", 503, errors.Throttled),  # a listed code beats the status
        ("ValidationError", 400, errors.InvalidRequest),  # bad parameter or missing group
        ("NoSuchEntity", 404, errors.NotFound),  # IAM entity does not exist
        ("ScalingActivityInProgress", 400, errors.Conflict),  # group busy scaling
        ("InternalFailure", 500, errors.Unavailable),  # listed server failure
        ("SomethingNewBroke", 503, errors.Unavailable),  # unknown code with a 5xx status
        ("SomethingNewRejected", 400, errors.ClientError),  # unknown code with a 4xx status
    ],
)
def test_call_translates_client_errors(code: str, status: int,
                                       expected: type[errors.ClientError]) -> None:
    with pytest.raises(errors.ClientError) as caught:
        call("autoscaling", "UpdateAutoScalingGroup", "workers-a",
             fail_with(client_error(code, status)))

    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.service == "autoscaling"
    assert str(caught.value) == (f"autoscaling UpdateAutoScalingGroup on workers-a failed: "
                                 f"{code}: the reason")


def test_access_denied_names_operation_and_resource() -> None:
    error = client_error("AccessDenied", 403, "User: arn:aws:sts::123456789012:assumed-role/rpa "
                         "is not authorized to perform: autoscaling:UpdateAutoScalingGroup")

    with pytest.raises(errors.Forbidden) as caught:
        call("autoscaling", "UpdateAutoScalingGroup", "trial-workers-07", fail_with(error))

    message = str(caught.value)
    assert "UpdateAutoScalingGroup on trial-workers-07" in message
    assert "is not authorized" in message
    assert caught.value.__cause__ is error


def test_call_cuts_long_aws_messages() -> None:
    error = client_error("ValidationError", 400, "v" * 500)

    with pytest.raises(errors.InvalidRequest) as caught:
        call("autoscaling", "PutScheduledUpdateGroupAction", "a/rpa-on", fail_with(error))

    assert str(caught.value).endswith(": ValidationError: " + "v" * 200)


def test_endpoint_connection_error_raises_unavailable() -> None:
    error = botocore.exceptions.EndpointConnectionError(
        endpoint_url=f"https://autoscaling.{REGION}.amazonaws.com/")

    with pytest.raises(errors.Unavailable) as caught:
        call("autoscaling", "DescribeAutoScalingGroups", "3 groups", fail_with(error))

    message = str(caught.value)
    assert message.startswith("autoscaling DescribeAutoScalingGroups on 3 groups failed: "
                              "EndpointConnectionError: ")
    assert f"https://autoscaling.{REGION}.amazonaws.com/" in message
    assert caught.value.status is None


def test_read_timeout_raises_unavailable() -> None:
    error = botocore.exceptions.ReadTimeoutError(endpoint_url="https://autoscaling.example/")

    with pytest.raises(errors.Unavailable, match="ReadTimeoutError"):
        call("autoscaling", "UpdateAutoScalingGroup", "workers-a", fail_with(error))


def test_call_returns_the_function_result() -> None:
    assert call("autoscaling", "DescribeAutoScalingGroups", "none", lambda: {"ok": 1}) == {"ok": 1}


# Client configuration.


def test_client_config_uses_standard_retry_mode(settings: Settings) -> None:
    config = client_config(settings)

    assert config.retries == {"mode": "standard", "max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout) == (10, 30)


def test_autoscaling_client_is_built_with_standard_retries(autoscaling: AutoScaling) -> None:
    client_retries = autoscaling._client.meta.config.retries

    assert client_retries["mode"] == "standard"
    assert autoscaling._client.meta.region_name == REGION


def test_client_pool_grows_with_concurrency() -> None:
    assert client_config(Settings(concurrency=32)).max_pool_connections == 64
    assert client_config(Settings(concurrency=1)).max_pool_connections == 10
