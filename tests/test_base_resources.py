"""Base resources of the accounts: S3 bucket, IAM identity, Pipeline storage, group."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rpa.base_resources import BaseObserved, names_for, plan_base
from rpa.cli import main
from rpa.clients.aws import BucketConfig, Identity
from rpa.inventory import Account, load_file, validate_records
from rpa.policies import PolicyError, bucket_policy, canonical, check_bucket_policy
from rpa.sandbox.runtime import AWS_KEY, SANDBOX_URLS, Servers, site_key
from rpa.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
CORE = "2026-12-04T10:00+09:00"
BASE_KINDS = {"bucket.create", "bucket.configure", "iam.create", "iam.policy",
              "pipeline.register_storage", "group.add"}


def _accounts() -> dict[str, Account]:
    return dict(validate_records(load_file(EXAMPLES)).accounts)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main(["modeler", "--sandbox", "--output", "json", "--now", CORE, *args])
    return status, json.loads(capsys.readouterr().out)


def _aws(servers: Servers, service: str) -> Any:
    return boto3.client(service, region_name="ap-northeast-2",
                        endpoint_url=servers.endpoints.aws_url, aws_access_key_id=AWS_KEY,
                        aws_secret_access_key=AWS_KEY)


def _base(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["account"], a["kind"], a["status"]) for a in report["actions"]
            if a["kind"] in BASE_KINDS]


def test_every_active_account_gets_base(sandbox: Servers,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, first = run_json(capsys)
    status_again, second = run_json(capsys)

    in_use = sorted(a["account"] for a in first["accounts"] if a["state"] == "in_use")
    assert status == 0
    for kind in ("bucket.create", "iam.create", "pipeline.register_storage", "group.add"):
        assert sorted(a for a, k, s in _base(first) if k == kind and s == "done") == in_use
    assert status_again == 0
    assert second["actions"] == []

    s3 = _aws(sandbox, "s3")
    bucket = "accuinsight-trial-user03"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {"managed-by": "accuinsight-rpa", "rpa:account": "trial_user03"}
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    iam = _aws(sandbox, "iam")
    role = iam.get_role(RoleName="trial-trial-user03")["Role"]
    assert role["Path"] == "/accuinsight-rpa/"
    policy = iam.get_role_policy(RoleName="trial-trial-user03", PolicyName="rpa-own-bucket")
    resources = [s["Resource"] for s in policy["PolicyDocument"]["Statement"]]
    assert resources == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]

    accounts_api = sandbox.platform.accounts
    storages = accounts_api.storages(site_key(SANDBOX_URLS["pipeline_url"]))
    assert sorted(s["account"] for s in storages) == in_use
    assert [s["bucket"] for s in storages if s["account"] == "trial_user03"] == [bucket]
    members = accounts_api.members(site_key(SANDBOX_URLS["portal_url"]), "trial-users")
    assert sorted(members) == in_use


def test_drift_repaired(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                        tmp_path: Path) -> None:
    raw = load_file(EXAMPLES)
    raw["modeler"]["trial_user03"]["storage"] = {"versioning": True}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    run_json(capsys, "--inventory", str(inventory), "--account", "trial_user03")
    s3, iam = _aws(sandbox, "s3"), _aws(sandbox, "iam")
    bucket, role = "accuinsight-trial-user03", "trial-trial-user03"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    # By hand: versioning suspended, a statement for every bucket added to the policy.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    document = iam.get_role_policy(RoleName=role, PolicyName="rpa-own-bucket")["PolicyDocument"]
    document["Statement"].append({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    iam.put_role_policy(RoleName=role, PolicyName="rpa-own-bucket",
                        PolicyDocument=json.dumps(document))

    status, report = run_json(capsys, "--inventory", str(inventory), "--account", "trial_user03")
    _, again = run_json(capsys, "--inventory", str(inventory), "--account", "trial_user03")

    assert status == 0
    kinds = {(a["kind"], a["detail"]) for a in report["actions"]}
    assert ("bucket.configure", "versioning Suspended -> Enabled") in kinds
    assert ("iam.policy", "policy differs from the template") in kinds
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    repaired = iam.get_role_policy(RoleName=role, PolicyName="rpa-own-bucket")["PolicyDocument"]
    assert canonical(repaired) == canonical(bucket_policy(bucket))
    assert again["actions"] == []


def test_foreign_bucket_left_alone(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = _aws(sandbox, "s3")
    bucket = "accuinsight-trial-user03"
    s3.create_bucket(Bucket=bucket,
                     CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "x"}]})

    status, report = run_json(capsys, "--account", "trial_user03")

    assert status == 1
    assert [(e["account"], e["field"]) for e in report["errors"]] == [
        ("trial_user03", "modeler.storage.bucket")]
    assert "not managed" in report["errors"][0]["message"]
    assert [k for _, k, _ in _base(report) if k.startswith("bucket.")] == []
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {"team": "x"}
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket=bucket)


def test_invalid_bucket_name_reported(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    raw = load_file(EXAMPLES)
    raw["modeler"]["trial_user03"]["storage"] = {"bucket": "Trial_User03"}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    status, report = run_json(capsys, "--inventory", str(inventory), "--dry-run")

    assert status == 1
    assert [(e["account"], e["field"]) for e in report["errors"]] == [
        ("trial_user03", "modeler.storage.bucket")]
    assert "Trial_User03" in report["errors"][0]["message"]
    assert "trial_user03" not in {a["account"] for a in report["actions"]}


def test_template_name_checked_before_calls() -> None:
    # A template that yields an invalid name is a problem of the account, planned without AWS.
    settings = Settings(bucket_template="Bad_{account}")
    account = _accounts()["trial_user03"]
    result = plan_base([account], BaseObserved(), settings)
    assert result.actions == []
    assert [(p.account, p.field) for p in result.problems] == [
        ("trial_user03", "modeler.storage.bucket")]


def test_bucket_of_other_aws_account() -> None:
    account = _accounts()["trial_user03"]
    observed = BaseObserved(taken_elsewhere={"accuinsight-trial-user03"},
                            trust_principal="arn:aws:iam::123456789012:root")
    result = plan_base([account], observed, Settings())
    assert [p.field for p in result.problems] == ["modeler.storage.bucket"]
    assert "another AWS account" in result.problems[0].message
    assert "bucket.create" not in {a.kind.value for a in result.actions}


def test_head_bucket_forbidden_means_taken() -> None:
    from botocore.stub import Stubber

    from rpa.clients.aws import S3

    s3 = S3(boto3.Session(aws_access_key_id="x", aws_secret_access_key="x",
                          region_name="ap-northeast-2"), Settings())
    with Stubber(s3._client) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        stub.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
        assert s3.is_taken_elsewhere("someone-elses") is True
        assert s3.is_taken_elsewhere("free-name") is False


@pytest.mark.parametrize(("config", "versioning", "expected"), [
    # in step
    (BucketConfig({}, True, True, None), False, {}),
    (BucketConfig({}, True, True, "Suspended"), False, {}),
    # versioning asked for but never enabled
    (BucketConfig({}, True, True, None), True, {"versioning": ("never", "Enabled")}),
    # enabled by hand while the record says off: suspended, since it cannot be removed
    (BucketConfig({}, True, True, "Enabled"), False, {"versioning": ("Enabled", "Suspended")}),
    # public access and encryption turned off by hand
    (BucketConfig({}, False, False, None), False,
     {"public_access_block": ("off", "on"), "encryption": ("off", "on")}),
])
def test_bucket_changes(config: BucketConfig, versioning: bool,
                        expected: dict[str, tuple[str, str]]) -> None:
    from rpa.base_resources import _bucket_changes

    assert _bucket_changes(config, versioning) == expected


def test_policies_grant_only_own_bucket() -> None:
    accounts = _accounts()
    settings = Settings()
    buckets = {name: names_for(account, settings).bucket for name, account in accounts.items()
               if account.modeler is not None}
    assert len(set(buckets.values())) == len(buckets)
    for name, bucket in buckets.items():
        document = bucket_policy(bucket)
        text = json.dumps(document)
        others = [other for other_name, other in buckets.items() if other_name != name]
        assert all(f":::{other}" not in text for other in others if other != bucket)
        for statement in document["Statement"]:
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                assert resource in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*")


@pytest.mark.parametrize("resource", [
    "*",                                          # every resource
    "arn:aws:s3:::accuinsight-*",                 # a wildcard over other accounts' buckets
    "arn:aws:s3:::accuinsight-trial-user0?",      # a single-character wildcard
    "arn:aws:s3:::accuinsight-trial-user04/*",    # another account's objects
    "arn:aws:s3:::accuinsight-trial-user03x",     # a bucket whose name starts with ours
    "arn:aws:iam::123456789012:role/*",           # not S3 at all
])
def test_policy_check_rejects(resource: str) -> None:
    document = copy.deepcopy(bucket_policy("accuinsight-trial-user03"))
    document["Statement"][0]["Resource"] = resource
    with pytest.raises(PolicyError):
        check_bucket_policy(document, "accuinsight-trial-user03")


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{1,40}[a-z0-9]", fullmatch=True),
       st.from_regex(r"[a-z0-9*?][a-z0-9*?-]{1,40}", fullmatch=True))
def test_policy_check_never_passes_other_bucket(bucket: str, other: str) -> None:
    document = copy.deepcopy(bucket_policy(bucket))
    document["Statement"][0]["Resource"] = f"arn:aws:s3:::{other}"
    if other == bucket:
        check_bucket_policy(document, bucket)
    else:
        with pytest.raises(PolicyError):
            check_bucket_policy(document, bucket)


def test_canonical_ignores_order_and_singletons() -> None:
    first = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get"],
                                                      "Resource": "arn:aws:s3:::b"}]}
    second = {"Statement": {"Resource": ["arn:aws:s3:::b"], "Action": "s3:Get",
                            "Effect": "Allow"}, "Version": "2012-10-17"}
    assert canonical(first) == canonical(second)
    third = copy.deepcopy(first)
    third["Statement"][0]["Action"] = ["s3:Get", "s3:Put"]
    assert canonical(first) != canonical(third)


def test_unread_service_is_problem_not_action() -> None:
    account = _accounts()["trial_user03"]
    observed = BaseObserved(errors={"pipeline": "pipeline GET /api/v1/storages failed with "
                                                "HTTP 500"},
                            identities={"trial-trial-user03": Identity("trial-trial-user03",
                                                                       "arn")},
                            trust_principal="arn:aws:iam::123456789012:root")
    result = plan_base([account], observed, Settings())
    assert "pipeline.register_storage" not in {a.kind.value for a in result.actions}
    assert ("trial_user03", "pipeline") in {(p.account, p.field) for p in result.problems}


def test_sso_token_renewed_after_401(sandbox: Servers, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    # The first Pipeline listing answers 401: the client fetches a new token and goes on.
    sandbox.platform.fail_next(method="GET", path_contains="/api/v1/storages", status=401)

    status, report = run_json(capsys, "--account", "trial_user03")

    assert status == 0
    assert ("trial_user03", "pipeline.register_storage", "done") in _base(report)
    token_calls = sum(count for (api, _, _), count in sandbox.platform.calls.items()
                      if api == "sso")
    assert token_calls == 2


