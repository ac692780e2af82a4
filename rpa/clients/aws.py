"""AWS through boto3: one session per run, clients with the standard retry mode.

Raw boto3 dicts stay in this module; callers get the value objects below and the exceptions
of `rpa.clients.errors`. Throttling is retried by botocore itself (standard mode) before it
reaches us as `Throttled`.

boto3 and botocore are imported on first use, not with this module, because their import
takes about 0.1 s of CPU. Above RPA_CONCURRENCY 1 a run imports them in the background while
its records are read (`rpa.job`), and a run that never calls AWS skips the import.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rpa.clients import errors
from rpa.settings import Settings

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

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
# The largest pages the listings allow (MaxRecords of the Auto Scaling describes, MaxItems of
# IAM's ListRoles and ListUsers), so a run makes as few listing calls as it can.
AUTOSCALING_PAGE_SIZE = 100
IAM_PAGE_SIZE = 1000
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
    import boto3

    return boto3.Session(region_name=settings.aws_region)


def client_config(settings: Settings) -> Config:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=max(10, settings.concurrency * 2),
    )


def _status_class(status: int | None) -> type[errors.ClientError]:
    # Replies without a body (HeadBucket) carry only the status as their code.
    if status == 403:
        return errors.Forbidden
    if status == 404:
        return errors.NotFound
    return errors.Unavailable if (status or 0) >= 500 else errors.ClientError


def call(service: str, operation: str, resource: str, function: Callable[[], T]) -> T:
    """Run one boto3 call, translating its errors; messages name the action and resource."""
    import botocore.exceptions

    where = f"{service} {operation} on {resource}"
    try:
        return function()
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "Unknown")
        message = err.response.get("Error", {}).get("Message", "")[:200]
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        cls = ERROR_CODES.get(code) or _status_class(status)
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
                     lambda: list(paginator.paginate(
                         AutoScalingGroupNames=names,
                         PaginationConfig={"PageSize": AUTOSCALING_PAGE_SIZE})))
        return [_group_state(group) for page in pages for group in page["AutoScalingGroups"]]

    def describe_scheduled_actions(self, groups: Iterable[str]) -> dict[str, list[ScheduledAction]]:
        """Return this tool's one-off scheduled actions of the named groups.

        One paginated listing of the region serves every group, instead of one call per group.
        """
        wanted = set(groups)
        found: dict[str, list[ScheduledAction]] = {name: [] for name in wanted}
        paginator = self._client.get_paginator("describe_scheduled_actions")
        pages = call(self.service, "DescribeScheduledActions", "all groups",
                     lambda: list(paginator.paginate(
                         PaginationConfig={"PageSize": AUTOSCALING_PAGE_SIZE})))
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


# Tags and IAM path that mark what this tool manages; nothing without them is ever changed.
MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "accuinsight-rpa"
ACCOUNT_TAG = "rpa:account"
IAM_PATH = "/accuinsight-rpa/"
# S3 error codes that mean "this setting was never made", not a failure.
S3_UNSET_CODES = frozenset({
    "NoSuchTagSet",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
})


@dataclass(frozen=True)
class BucketConfig:
    """The settings of a bucket that the modeler job keeps in step."""

    tags: dict[str, str]
    public_access_blocked: bool
    encrypted: bool
    # "Enabled", "Suspended", or None for a bucket that never had versioning.
    versioning: str | None


def managed_tags(account: str) -> dict[str, str]:
    return {MANAGED_BY_TAG: MANAGED_BY_VALUE, ACCOUNT_TAG: account}


class S3:
    service = "s3"

    def __init__(self, session: boto3.Session, settings: Settings) -> None:
        self.region = settings.aws_region
        # Typed as Any: the calls below pass dicts that the stubs' TypedDicts would
        # need spelled out one by one.
        self._client: Any = session.client("s3", config=client_config(settings),
                                      endpoint_url=settings.aws_endpoint_url)

    def list_bucket_names(self) -> set[str]:
        """Return all buckets of this AWS account, read with one ListBuckets call."""
        reply = call(self.service, "ListBuckets", "all buckets", self._client.list_buckets)
        return {bucket["Name"] for bucket in reply.get("Buckets", [])}

    def is_taken_elsewhere(self, bucket: str) -> bool:
        """True when a bucket of that name exists in another AWS account (HeadBucket 403)."""
        try:
            call(self.service, "HeadBucket", bucket,
                 lambda: self._client.head_bucket(Bucket=bucket))
        except errors.Forbidden:
            return True
        except errors.ClientError as err:
            if err.status in (404, 301):
                return err.status == 301  # a 301 names another region, so it exists
            raise
        return False

    def read_config(self, bucket: str) -> BucketConfig:
        tags = self._unless_unset(bucket, "GetBucketTagging",
                                  lambda: self._client.get_bucket_tagging(Bucket=bucket))
        block = self._unless_unset(bucket, "GetPublicAccessBlock",
                                   lambda: self._client.get_public_access_block(Bucket=bucket))
        encryption = self._unless_unset(bucket, "GetBucketEncryption",
                                        lambda: self._client.get_bucket_encryption(Bucket=bucket))
        versioning = call(self.service, "GetBucketVersioning", bucket,
                          lambda: self._client.get_bucket_versioning(Bucket=bucket))
        settings = (block or {}).get("PublicAccessBlockConfiguration", {})
        return BucketConfig(
            tags={tag["Key"]: tag["Value"] for tag in (tags or {}).get("TagSet", [])},
            public_access_blocked=all(settings.get(key) for key in PUBLIC_ACCESS_KEYS),
            encrypted=bool((encryption or {}).get("ServerSideEncryptionConfiguration",
                                                  {}).get("Rules")),
            versioning=versioning.get("Status"),
        )

    def create_bucket(self, bucket: str) -> None:
        options: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            call(self.service, "CreateBucket", bucket,
                 lambda: self._client.create_bucket(**options))
        except errors.ClientError as err:
            if "BucketAlreadyOwnedByYou" not in str(err):
                raise

    def put_tags(self, bucket: str, tags: dict[str, str]) -> None:
        tag_set = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
        call(self.service, "PutBucketTagging", bucket, lambda: self._client.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": tag_set}))

    def block_public_access(self, bucket: str) -> None:
        call(self.service, "PutPublicAccessBlock", bucket,
             lambda: self._client.put_public_access_block(
                 Bucket=bucket,
                 PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_KEYS, True)))

    def enable_encryption(self, bucket: str) -> None:
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        call(self.service, "PutBucketEncryption", bucket,
             lambda: self._client.put_bucket_encryption(
                 Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]}))

    def set_versioning(self, bucket: str, status: str) -> None:
        call(self.service, "PutBucketVersioning", bucket,
             lambda: self._client.put_bucket_versioning(
                 Bucket=bucket, VersioningConfiguration={"Status": status}))

    def count_contents(self, bucket: str) -> tuple[int, int, int]:
        """Count object versions, delete markers and unfinished multipart uploads."""
        paginator = self._client.get_paginator("list_object_versions")
        pages = call(self.service, "ListObjectVersions", bucket,
                     lambda: list(paginator.paginate(Bucket=bucket)))
        versions = sum(len(page.get("Versions", [])) for page in pages)
        markers = sum(len(page.get("DeleteMarkers", [])) for page in pages)
        uploads = call(self.service, "ListMultipartUploads", bucket,
                       lambda: self._client.list_multipart_uploads(Bucket=bucket))
        return versions, markers, len(uploads.get("Uploads", []))

    def empty_bucket(self, bucket: str) -> int:
        """Delete every object version, delete marker and unfinished upload; return the count.

        Each round lists the first page again and deletes it by version id. Following the
        listing's markers while deleting would skip entries, so the listing restarts until it
        is empty. DeleteObjects returns 200 even when some keys failed, so any listed error
        raises PartialFailure.
        """
        deleted = self._abort_uploads(bucket)
        previous: list[dict[str, str]] = []
        while True:
            page = call(self.service, "ListObjectVersions", bucket,
                        lambda: self._client.list_object_versions(
                            Bucket=bucket, MaxKeys=DELETE_BATCH_SIZE))
            batch = [{"Key": item["Key"], "VersionId": item["VersionId"]}
                     for item in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            batch = batch[:DELETE_BATCH_SIZE]
            if not batch:
                return deleted
            if batch == previous:
                raise errors.PartialFailure(f"s3 DeleteObjects on {bucket}: the same "
                                            f"{len(batch)} versions are still listed after "
                                            "their deletion", service=self.service)
            self._delete_batch(bucket, batch)
            deleted += len(batch)
            previous = batch

    def _delete_batch(self, bucket: str, batch: list[dict[str, str]]) -> None:
        reply = call(self.service, "DeleteObjects", bucket,
                     lambda: self._client.delete_objects(
                         Bucket=bucket, Delete={"Objects": batch, "Quiet": True}))
        failures = reply.get("Errors", [])
        if failures:
            first = failures[0]
            raise errors.PartialFailure(
                f"s3 DeleteObjects on {bucket}: {len(failures)} of {len(batch)} versions "
                f"failed, first {first.get('Key')!r} version {first.get('VersionId')}: "
                f"{first.get('Code')}: {first.get('Message', '')[:200]}", service=self.service)

    def _abort_uploads(self, bucket: str) -> int:
        reply = call(self.service, "ListMultipartUploads", bucket,
                     lambda: self._client.list_multipart_uploads(Bucket=bucket))
        uploads = reply.get("Uploads", [])
        for upload in uploads:
            self._abort_upload(bucket, upload["Key"], upload["UploadId"])
        return len(uploads)

    def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        call(self.service, "AbortMultipartUpload", f"{bucket}/{key}",
             lambda: self._client.abort_multipart_upload(Bucket=bucket, Key=key,
                                                         UploadId=upload_id))

    def _unless_unset(self, bucket: str, operation: str, function: Callable[[], T]) -> T | None:
        try:
            return call(self.service, operation, bucket, function)
        except errors.ClientError as err:
            if any(code in str(err) for code in S3_UNSET_CODES):
                return None
            raise


# DeleteObjects takes at most this many keys in one call.
DELETE_BATCH_SIZE = 1000
PUBLIC_ACCESS_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                      "RestrictPublicBuckets")


@dataclass(frozen=True)
class Identity:
    """An IAM role or user of an account, created by this tool under IAM_PATH."""

    name: str
    arn: str


class Iam:
    """IAM roles or users of the accounts, with one inline policy each."""

    service = "iam"

    def __init__(self, session: boto3.Session, settings: Settings) -> None:
        self.kind = settings.iam_kind
        self._client: Any = session.client("iam", config=client_config(settings),
                                      endpoint_url=settings.aws_endpoint_url)
        self._sts = session.client("sts", config=client_config(settings),
                                   endpoint_url=settings.aws_endpoint_url)

    def list_managed(self) -> dict[str, Identity]:
        """Return every identity under this tool's IAM path, read with one paginated listing."""
        operation = "ListRoles" if self.kind == "role" else "ListUsers"
        key = "Roles" if self.kind == "role" else "Users"
        paginator = self._client.get_paginator("list_roles" if self.kind == "role"
                                               else "list_users")
        pages = call(self.service, operation, IAM_PATH,
                     lambda: list(paginator.paginate(
                         PathPrefix=IAM_PATH, PaginationConfig={"PageSize": IAM_PAGE_SIZE})))
        name_key = "RoleName" if self.kind == "role" else "UserName"
        return {item[name_key]: Identity(item[name_key], item["Arn"])
                for page in pages for item in page[key]}

    def read_policy(self, name: str, policy: str) -> dict[str, Any] | None:
        """Return the inline policy document, or None when the identity has no such policy."""
        try:
            if self.kind == "role":
                reply: Any = call(self.service, "GetRolePolicy", f"{name}/{policy}",
                             lambda: self._client.get_role_policy(RoleName=name,
                                                                  PolicyName=policy))
            else:
                reply = call(self.service, "GetUserPolicy", f"{name}/{policy}",
                             lambda: self._client.get_user_policy(UserName=name,
                                                                  PolicyName=policy))
        except errors.NotFound:
            return None
        document: Any = reply["PolicyDocument"]
        # boto3 decodes the URL-encoded document; some endpoints still return a JSON string.
        return json.loads(document) if isinstance(document, str) else dict(document)

    def create(self, name: str, *, account: str, trust: dict[str, Any]) -> None:
        tags = [{"Key": key, "Value": value} for key, value in managed_tags(account).items()]
        if self.kind == "role":
            call(self.service, "CreateRole", name, lambda: self._client.create_role(
                RoleName=name, Path=IAM_PATH, AssumeRolePolicyDocument=json.dumps(trust),
                Tags=tags))
        else:
            call(self.service, "CreateUser", name, lambda: self._client.create_user(
                UserName=name, Path=IAM_PATH, Tags=tags))

    def put_policy(self, name: str, policy: str, document: dict[str, Any]) -> None:
        text = json.dumps(document)
        if self.kind == "role":
            call(self.service, "PutRolePolicy", f"{name}/{policy}",
                 lambda: self._client.put_role_policy(RoleName=name, PolicyName=policy,
                                                      PolicyDocument=text))
        else:
            call(self.service, "PutUserPolicy", f"{name}/{policy}",
                 lambda: self._client.put_user_policy(UserName=name, PolicyName=policy,
                                                      PolicyDocument=text))

    def list_access_keys(self, name: str) -> list[str]:
        """Access key ids of an IAM user; roles have none, so this returns [] for them."""
        if self.kind == "role":
            return []
        reply = call(self.service, "ListAccessKeys", name,
                     lambda: self._client.list_access_keys(UserName=name))
        return [key["AccessKeyId"] for key in reply.get("AccessKeyMetadata", [])]

    def delete_access_key(self, name: str, key_id: str) -> None:
        try:
            call(self.service, "DeleteAccessKey", f"{name}/{key_id}",
                 lambda: self._client.delete_access_key(UserName=name, AccessKeyId=key_id))
        except errors.NotFound:
            log.info("access key %s of %s was already gone", key_id, name)

    def account_root(self) -> str:
        reply = call("sts", "GetCallerIdentity", "caller", self._sts.get_caller_identity)
        return f"arn:aws:iam::{reply['Account']}:root"


# EMR states of a cluster that runs or is on its way to run; the others are ending or ended.
ACTIVE_CLUSTER_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
CLUSTER_TAG = "rpa:cluster"
# Tag of a cluster made to replace one stuck in STARTING; the value is the stuck cluster's id.
REPLACES_TAG = "rpa:replaces"


@dataclass(frozen=True)
class ClusterState:
    """An EMR cluster as ListClusters returns it; only `describe_cluster` fills `tags`."""

    id: str
    name: str
    state: str
    created_at: dt.datetime
    state_change_code: str | None = None
    state_change_message: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)


@dataclass(frozen=True)
class ClusterRequest:
    """A cluster to create: one master node and `core_count` core nodes, all in `market`."""

    name: str
    release_label: str
    applications: tuple[str, ...]
    master_instance_type: str
    core_instance_type: str
    core_count: int
    market: str
    tags: tuple[tuple[str, str], ...]


class Emr:
    """The EMR calls of the mcm job."""

    service = "emr"

    def __init__(self, session: boto3.Session, settings: Settings) -> None:
        from botocore.config import Config

        config = client_config(settings)
        self._client = session.client("emr", config=config,
                                      endpoint_url=settings.aws_endpoint_url)
        # RunJobFlow takes no idempotency token, so a retry after a lost reply would start a
        # second cluster. Creates go through a client that never retries, as in the REST
        # clients.
        self._create_client = session.client(
            "emr", config=config.merge(Config(retries={"mode": "standard",
                                                       "total_max_attempts": 1})),
            endpoint_url=settings.aws_endpoint_url)
        self._settings = settings

    def list_clusters(self, states: Iterable[str], *,
                      created_after: dt.datetime | None = None) -> list[ClusterState]:
        """Return the clusters in `states`, created after `created_after` when given.

        One paginated listing serves every account, so there is one call per page.
        """
        params: dict[str, Any] = {"ClusterStates": list(states)}
        if created_after is not None:
            params["CreatedAfter"] = created_after
        paginator = self._client.get_paginator("list_clusters")
        pages = call(self.service, "ListClusters", ",".join(params["ClusterStates"]),
                     lambda: list(paginator.paginate(**params)))
        return [_cluster_state(item) for page in pages for item in page["Clusters"]]

    def describe_cluster(self, cluster_id: str) -> ClusterState:
        """Return the cluster with its tags; raises InvalidRequest when the id is unknown."""
        reply = call(self.service, "DescribeCluster", cluster_id,
                     lambda: self._client.describe_cluster(ClusterId=cluster_id))
        cluster = reply["Cluster"]
        tags = tuple(sorted((tag["Key"], tag["Value"]) for tag in cluster.get("Tags", [])))
        return _cluster_state(cluster, tags=tags)

    def run_job_flow(self, request: ClusterRequest) -> str:
        """Start the cluster and return its id; EMR's ValidationException is InvalidRequest."""
        settings = self._settings
        groups: list[Any] = [
            # Without a BidPrice, EMR bids the On-Demand price for Spot nodes.
            {"Name": "master", "InstanceRole": "MASTER", "Market": request.market,
             "InstanceType": request.master_instance_type, "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "Market": request.market,
             "InstanceType": request.core_instance_type, "InstanceCount": request.core_count},
        ]
        # Trial users submit work interactively, so the cluster waits instead of ending when
        # it has no steps.
        instances: dict[str, Any] = {"InstanceGroups": groups,
                                     "KeepJobFlowAliveWhenNoSteps": True,
                                     "TerminationProtected": False}
        if settings.emr_subnet_id:
            instances["Ec2SubnetId"] = settings.emr_subnet_id
        params: dict[str, Any] = {
            "Name": request.name, "ReleaseLabel": request.release_label,
            "Applications": [{"Name": name} for name in request.applications],
            "Instances": instances, "JobFlowRole": settings.emr_instance_profile,
            "ServiceRole": settings.emr_service_role, "VisibleToAllUsers": True,
            "Tags": [{"Key": key, "Value": value} for key, value in request.tags],
        }
        if settings.emr_log_uri:
            params["LogUri"] = settings.emr_log_uri
        reply = call(self.service, "RunJobFlow", request.name,
                     lambda: self._create_client.run_job_flow(**params))
        cluster_id: str = reply["JobFlowId"]
        return cluster_id

    def terminate_cluster(self, cluster_id: str) -> None:
        """Ask EMR to terminate the cluster; the call returns before the cluster has ended."""
        call(self.service, "TerminateJobFlows", cluster_id,
             lambda: self._client.terminate_job_flows(JobFlowIds=[cluster_id]))


def _cluster_state(cluster: Any, *, tags: tuple[tuple[str, str], ...] = ()) -> ClusterState:
    status = cluster["Status"]
    reason = status.get("StateChangeReason", {})
    created_at = status["Timeline"]["CreationDateTime"].astimezone(dt.UTC)
    return ClusterState(cluster["Id"], cluster["Name"], status["State"], created_at,
                        reason.get("Code"), reason.get("Message"), tags)
