"""Base resources of every account in its usage period, reconciled by the modeler job.

Each account gets an S3 bucket (tagged as managed, public access blocked, encrypted,
versioning as in its record), an IAM role or user whose inline policy grants its own bucket
and nothing else, a Pipeline registration of the bucket, and membership of the trial user
group. The end-of-service job empties the bucket and removes the rest; the bucket and the IAM
identity stay for the next user of the pooled account.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rpa.clients import errors
from rpa.clients.aws import (
    ACCOUNT_TAG,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    BucketConfig,
    Identity,
    managed_tags,
)
from rpa.clients.pipeline import StorageRegistration
from rpa.inventory import Account, bucket_name_problem
from rpa.job import PlanResult, Run
from rpa.parallel import read_all
from rpa.plan import Action, Kind, Problem
from rpa.policies import BUCKET_POLICY_NAME, PolicyError, bucket_policy, canonical, trust_policy
from rpa.settings import Settings

log = logging.getLogger(__name__)

BASE_KINDS = frozenset({Kind.BUCKET_CREATE, Kind.BUCKET_CONFIGURE, Kind.IAM_CREATE,
                        Kind.IAM_POLICY, Kind.PIPELINE_REGISTER_STORAGE, Kind.GROUP_ADD})


@dataclass(frozen=True)
class Names:
    """The bucket and IAM identity of one account, from its record or the settings."""

    bucket: str
    identity: str


def names_for(account: Account, settings: Settings) -> Names:
    assert account.modeler is not None
    storage = account.modeler.storage
    dns = account.name.lower().replace("_", "-")
    bucket = storage.bucket or settings.bucket_template.format(account=account.name,
                                                               account_dns=dns)
    identity = storage.iam_name or settings.iam_name_template.format(account=account.name,
                                                                     account_dns=dns)
    return Names(bucket, identity)


@dataclass
class BaseObserved:
    """Observed base resources; `errors` maps a service to why it could not be read."""

    buckets: set[str] = field(default_factory=set)
    taken_elsewhere: set[str] = field(default_factory=set)
    bucket_configs: dict[str, BucketConfig] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    policies: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    storages: dict[str, StorageRegistration] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    trust_principal: str = ""
    errors: dict[str, str] = field(default_factory=dict)


# Observe.

def observe(run: Run, accounts: Sequence[Account]) -> BaseObserved:
    """Read what exists: one listing per service, then the reads AWS offers only per resource.

    Bucket settings and inline policies have no listing, so they are read one resource at a
    time, concurrently, with at most RPA_CONCURRENCY calls in flight.
    """
    observed = BaseObserved()
    names = [names_for(account, run.settings) for account in accounts]
    _read_listings(run, observed)
    _read_each_resource(run, names, observed)
    return observed


def _read_listings(run: Run, observed: BaseObserved) -> None:
    """List the buckets, identities, storages and group members, at the same time."""
    listings: dict[str, Callable[[], object]] = {
        "s3": lambda: observed.buckets.update(run.env.s3().list_bucket_names()),
        "iam": lambda: observed.identities.update(run.env.iam().list_managed()),
        "pipeline": lambda: observed.storages.update(
            {item.account: item for item in run.env.pipeline().list_storages()}),
        "portal": lambda: observed.members.update(
            run.env.portal().list_members(run.settings.account_group)),
    }
    results = read_all(list(listings.values()), workers=run.settings.concurrency)
    for service, result in zip(listings, results, strict=True):
        if isinstance(result, errors.ClientError):
            _record_error(observed, service, result)


def _record_error(observed: BaseObserved, service: str, err: errors.ClientError) -> None:
    log.error("cannot read %s: %s", service, err)
    observed.errors.setdefault(service, str(err))


# A per-resource read: the service it counts for, the resource, and the call.
ResourceRead = tuple[str, str, Callable[[], object]]
# The resource of the read of the principal that new IAM identities trust.
TRUST_PRINCIPAL = "trust principal"


def _read_each_resource(run: Run, names: Sequence[Names], observed: BaseObserved) -> None:
    """Read each bucket's settings (or whether another AWS account has it) and each policy.

    A failed read fails its whole service, as a failed listing does, so the plan never acts
    on a partial view of it.
    """
    reads = (_bucket_reads(run, names, observed) + _policy_reads(run, names, observed)
             + _trust_principal_read(run, names, observed))
    results = read_all([read for _, _, read in reads], workers=run.settings.concurrency)
    for (service, resource, _), result in zip(reads, results, strict=True):
        if isinstance(result, errors.ClientError):
            _record_error(observed, service, result)
        elif resource == TRUST_PRINCIPAL:
            observed.trust_principal = str(result)
        elif service == "s3" and isinstance(result, BucketConfig):
            observed.bucket_configs[resource] = result
        elif service == "s3" and result is True:
            observed.taken_elsewhere.add(resource)
        elif service == "iam":
            observed.policies[resource] = result if isinstance(result, dict) else None
    if "s3" in observed.errors:
        observed.bucket_configs.clear()
        observed.taken_elsewhere.clear()
    if "iam" in observed.errors:
        observed.policies.clear()
        observed.trust_principal = ""


def _bucket_reads(run: Run, names: Sequence[Names], observed: BaseObserved
                  ) -> list[ResourceRead]:
    if "s3" in observed.errors:
        return []
    s3 = run.env.s3()
    reads: list[ResourceRead] = []
    for bucket in sorted({item.bucket for item in names if not bucket_name_problem(item.bucket)}):
        if bucket in observed.buckets:
            reads.append(("s3", bucket, functools.partial(s3.read_config, bucket)))
        else:
            reads.append(("s3", bucket, functools.partial(s3.is_taken_elsewhere, bucket)))
    return reads


def _policy_reads(run: Run, names: Sequence[Names], observed: BaseObserved
                  ) -> list[ResourceRead]:
    if "iam" in observed.errors:
        return []
    iam = run.env.iam()
    existing = sorted({item.identity for item in names} & set(observed.identities))
    return [("iam", identity, functools.partial(iam.read_policy, identity, BUCKET_POLICY_NAME))
            for identity in existing]


def _trust_principal_read(run: Run, names: Sequence[Names], observed: BaseObserved
                          ) -> list[ResourceRead]:
    """Return the read of the principal that new identities trust, if one is to be created.

    A run that creates no identity, or whose settings name the principal, makes no STS call.
    """
    if "iam" in observed.errors or all(item.identity in observed.identities for item in names):
        return []
    principal = run.settings.iam_trust_principal
    if principal:
        return [("iam", TRUST_PRINCIPAL, lambda: principal)]
    return [("iam", TRUST_PRINCIPAL, run.env.iam().account_root)]


# Plan: pure.

def plan_base(accounts: Sequence[Account], observed: BaseObserved, settings: Settings
              ) -> PlanResult:
    result = PlanResult()
    for account in sorted(accounts, key=lambda item: item.name):
        names = names_for(account, settings)
        problem = bucket_name_problem(names.bucket)
        if problem:
            result.problems.append(Problem(account.name, "modeler.storage.bucket", problem))
            continue
        _plan_bucket(account, names, observed, result)
        _plan_identity(account, names, observed, settings, result)
        _plan_pipeline(account, names, observed, settings, result)
        _plan_group(account, observed, settings, result)
    return result


def _area_error(account: Account, observed: BaseObserved, service: str, field_name: str,
                result: PlanResult) -> bool:
    if service in observed.errors:
        result.problems.append(Problem(account.name, field_name, observed.errors[service]))
        return True
    return False


def _plan_bucket(account: Account, names: Names, observed: BaseObserved,
                 result: PlanResult) -> None:
    if _area_error(account, observed, "s3", "modeler.storage.bucket", result):
        return
    assert account.modeler is not None
    versioning = account.modeler.storage.versioning
    bucket = names.bucket
    if bucket in observed.taken_elsewhere:
        result.problems.append(Problem(account.name, "modeler.storage.bucket",
                                       f"bucket {bucket!r} belongs to another AWS account; "
                                       "choose another name in the record"))
        return
    config = observed.bucket_configs.get(bucket)
    if config is None:
        result.actions.append(Action(account.name, Kind.BUCKET_CREATE, bucket,
                                     f"versioning {'on' if versioning else 'off'}",
                                     {"versioning": versioning}))
        return
    owner = config.tags.get(ACCOUNT_TAG)
    if config.tags.get(MANAGED_BY_TAG) != MANAGED_BY_VALUE or owner != account.name:
        # NOTE: a bucket whose create succeeded but whose tagging failed lands here too;
        # an operator who checks it adds the two tags by hand.
        result.problems.append(Problem(
            account.name, "modeler.storage.bucket",
            f"bucket {bucket!r} exists but is not managed for this account "
            f"(tags {MANAGED_BY_TAG}={config.tags.get(MANAGED_BY_TAG)!r}, "
            f"{ACCOUNT_TAG}={owner!r}); left alone"))
        return
    changes = _bucket_changes(config, versioning)
    if changes:
        detail = ", ".join(f"{key} {before} -> {after}" for key, (before, after) in
                           changes.items())
        result.actions.append(Action(account.name, Kind.BUCKET_CONFIGURE, bucket, detail,
                                     {"changes": sorted(changes), "versioning": versioning}))


def _bucket_changes(config: BucketConfig, versioning: bool) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    if not config.public_access_blocked:
        changes["public_access_block"] = ("off", "on")
    if not config.encrypted:
        changes["encryption"] = ("off", "on")
    # Versioning cannot be removed once enabled, only suspended.
    if versioning and config.versioning != "Enabled":
        changes["versioning"] = (config.versioning or "never", "Enabled")
    elif not versioning and config.versioning == "Enabled":
        changes["versioning"] = ("Enabled", "Suspended")
    return changes


def _plan_identity(account: Account, names: Names, observed: BaseObserved, settings: Settings,
                   result: PlanResult) -> None:
    if _area_error(account, observed, "iam", "modeler.storage.iam_name", result):
        return
    try:
        wanted = bucket_policy(names.bucket)
    except PolicyError as err:
        result.problems.append(Problem(account.name, "modeler.storage.bucket",
                                       f"policy template rejected: {err}"))
        return
    params = {"name": names.identity, "policy": wanted}
    if names.identity not in observed.identities:
        result.actions.append(Action(
            account.name, Kind.IAM_CREATE, names.identity,
            f"{settings.iam_kind} with policy {BUCKET_POLICY_NAME} on {names.bucket}",
            {**params, "trust": trust_policy(observed.trust_principal)}))
        return
    current = observed.policies.get(names.identity)
    if current is None or canonical(current) != canonical(wanted):
        detail = "policy missing" if current is None else "policy differs from the template"
        result.actions.append(Action(account.name, Kind.IAM_POLICY,
                                     f"{names.identity}/{BUCKET_POLICY_NAME}", detail, params))


def _plan_pipeline(account: Account, names: Names, observed: BaseObserved, settings: Settings,
                   result: PlanResult) -> None:
    if _area_error(account, observed, "pipeline", "pipeline", result):
        return
    found = observed.storages.get(account.name)
    wanted = (names.bucket, settings.aws_region)
    if found is not None and (found.bucket, found.region) == wanted:
        return
    detail = (f"{found.bucket} -> {names.bucket}" if found else f"bucket {names.bucket}")
    result.actions.append(Action(account.name, Kind.PIPELINE_REGISTER_STORAGE, names.bucket,
                                 detail, {"bucket": names.bucket, "region": settings.aws_region,
                                          "storage_id": found.id if found else None}))


def _plan_group(account: Account, observed: BaseObserved, settings: Settings,
                result: PlanResult) -> None:
    if _area_error(account, observed, "portal", "group", result):
        return
    if account.name not in observed.members:
        result.actions.append(Action(account.name, Kind.GROUP_ADD, settings.account_group,
                                     "not a member", {"group": settings.account_group}))


# Apply.

def apply_base(run: Run, action: Action) -> None:
    params = action.params
    match action.kind:
        case Kind.BUCKET_CREATE:
            _create_bucket(run, action.account, action.target, versioning=params["versioning"])
        case Kind.BUCKET_CONFIGURE:
            _configure_bucket(run, action.target, params["changes"], params["versioning"])
        case Kind.IAM_CREATE:
            iam = run.env.iam()
            iam.create(params["name"], account=action.account, trust=params["trust"])
            iam.put_policy(params["name"], BUCKET_POLICY_NAME, params["policy"])
        case Kind.IAM_POLICY:
            run.env.iam().put_policy(params["name"], BUCKET_POLICY_NAME, params["policy"])
        case Kind.PIPELINE_REGISTER_STORAGE:
            pipeline = run.env.pipeline()
            if params["storage_id"] is None:
                pipeline.register_storage(account=action.account, bucket=params["bucket"],
                                          region=params["region"])
            else:
                pipeline.update_storage(params["storage_id"], bucket=params["bucket"],
                                        region=params["region"])
        case Kind.GROUP_ADD:
            run.env.portal().add_member(params["group"], action.account)
        case _:
            raise ValueError(f"not a base resource action: {action.kind.value}")


def _create_bucket(run: Run, account: str, bucket: str, *, versioning: bool) -> None:
    s3 = run.env.s3()
    s3.create_bucket(bucket)
    # Tags first: they are what marks the bucket as this tool's on the next run.
    s3.put_tags(bucket, managed_tags(account))
    s3.block_public_access(bucket)
    s3.enable_encryption(bucket)
    if versioning:
        s3.set_versioning(bucket, "Enabled")


def _configure_bucket(run: Run, bucket: str, changes: list[str], versioning: bool) -> None:
    s3 = run.env.s3()
    if "public_access_block" in changes:
        s3.block_public_access(bucket)
    if "encryption" in changes:
        s3.enable_encryption(bucket)
    if "versioning" in changes:
        s3.set_versioning(bucket, "Enabled" if versioning else "Suspended")
