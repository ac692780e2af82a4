"""Offline checks of the Kubernetes manifests, the IAM and Vault policies and the operator guide.

The manifests are validated against the Kubernetes OpenAPI schemas that kubernetes-validate
ships (strict mode, so an unknown or misspelt field fails). Schemas do not check values, so
the tests below also parse each schedule with croniter, compute its next runs in its time
zone, and compare deadlines with the interval between runs.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from croniter import croniter
from pydantic import SecretStr

from rpa.inventory import FOLDERS
from rpa.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "k8s" / "cronjobs"
IAM_POLICY = ROOT / "k8s" / "iam-policy.json"
VAULT_POLICY = ROOT / "k8s" / "vault-policy.hcl"
DOCS = {"en": ROOT / "docs" / "operations.md", "ko": ROOT / "docs" / "operations.ko.md"}
# The Kubernetes minor version the manifests are checked against. The manifests need at least
# 1.31, because CronJob timeZone is GA since 1.27 and Job podFailurePolicy since 1.31.
KUBERNETES_VERSION = "1.34"
NAMESPACE = "accuinsight-rpa"
IMAGE_UID = 10001
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

# Each CronJob: its module, schedule, time zone and the first runs after FROM_INSTANT.
FROM_INSTANT = dt.datetime.fromisoformat("2026-12-04T08:59+09:00")
CRONJOBS: dict[str, dict[str, Any]] = {
    "rpa-modeler": {
        "module": "rpa.modeler", "schedule": "0 * * * *",
        "next": ["2026-12-04T09:00+09:00", "2026-12-04T10:00+09:00"],
        "secrets": {"RPA_DB_URL", "RPA_MODELER_TOKEN", "RPA_SSO_CLIENT_SECRET",
                    "RPA_SLACK_TOKEN"},
    },
    "rpa-mcm": {
        "module": "rpa.mcm", "schedule": "*/30 * * * *",
        "next": ["2026-12-04T09:00+09:00", "2026-12-04T09:30+09:00"],
        "secrets": {"RPA_DB_URL", "RPA_MCM_TOKEN", "RPA_SLACK_TOKEN"},
    },
    "rpa-endsvc": {
        "module": "rpa.endsvc", "schedule": "0 9 * * *",
        "next": ["2026-12-04T09:00+09:00", "2026-12-05T09:00+09:00"],
        "secrets": {"RPA_DB_URL", "RPA_MODELER_TOKEN", "RPA_MCM_TOKEN", "RPA_SSO_CLIENT_SECRET",
                    "RPA_SLACK_TOKEN"},
    },
    "rpa-noti": {
        "module": "rpa.noti", "schedule": "10 9 * * *",
        "next": ["2026-12-04T09:10+09:00", "2026-12-05T09:10+09:00"],
        "secrets": {"RPA_DB_URL", "RPA_SLACK_TOKEN", "RPA_MODELER_TOKEN"},
    },
}
# Secret objects the operator creates: environment variable -> (Secret name, key).
SECRET_REFS = {
    "RPA_DB_URL": ("accuinsight-rpa-db", "url"),
    "RPA_MODELER_TOKEN": ("accuinsight-rpa-modeler", "token"),
    "RPA_MCM_TOKEN": ("accuinsight-rpa-mcm", "token"),
    "RPA_SSO_CLIENT_SECRET": ("accuinsight-rpa-sso", "client-secret"),
    "RPA_SLACK_TOKEN": ("accuinsight-rpa-slack", "token"),
}
CONFIGMAP_KEYS = {
    "RPA_VAULT_ADDR", "RPA_VAULT_AUTH", "RPA_VAULT_K8S_ROLE", "RPA_VAULT_KV_MOUNT",
    "RPA_AWS_REGION", "RPA_LANG", "RPA_LOG_FORMAT", "RPA_MAX_DELETES", "RPA_CONCURRENCY",
    "RPA_SLACK_CHANNEL", "RPA_SLACK_ALERT_CHANNEL",
}
# Settings of the Slack jobs that rpa/settings.py does not declare yet.
LATER_JOB_SETTINGS = {"RPA_SLACK_CHANNEL", "RPA_SLACK_ALERT_CHANNEL", "RPA_SLACK_TOKEN"}
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|DB_URL|PRIVATE|ACCESS_KEY")
# Shapes of real credentials that must never be committed.
SECRET_VALUES = {
    "Slack token": re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    "Vault token": re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}"),
    "URL with a password": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


# Loading.

def manifest_files() -> list[Path]:
    return sorted(path for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml")


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BASE / "kustomization.yaml").read_text("utf-8"))
    return data


def resources() -> list[tuple[str, dict[str, Any]]]:
    loaded = []
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                loaded.append((path.name, document))
    return loaded


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in resources() if doc["kind"] == kind}


def cronjob(name: str) -> dict[str, Any]:
    return by_kind("CronJob")[name]


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(job)["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def interval_seconds(schedule: str, zone: str) -> float:
    """Return the shortest gap between two runs over eight days from FROM_INSTANT."""
    runs = croniter(schedule, FROM_INSTANT.astimezone(zoneinfo.ZoneInfo(zone)))
    times = [runs.get_next(dt.datetime) for _ in range(8 * 24 * 2 + 2)]
    end = FROM_INSTANT + dt.timedelta(days=8)
    times = [time for time in times if time <= end]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    return float(min(gaps))


# Kustomization.

def test_kustomization_lists_every_file() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed)), f"a file is listed twice: {listed}"
    assert sorted(listed) == [path.name for path in manifest_files()]


def test_kustomization_sets_namespace() -> None:
    assert kustomization()["namespace"] == NAMESPACE
    for name, document in resources():
        assert document["metadata"].get("namespace", NAMESPACE) == NAMESPACE, name


def test_kustomization_sets_image() -> None:
    images = {image["name"]: image for image in kustomization()["images"]}
    for name in CRONJOBS:
        assert container(cronjob(name))["image"] in images, name
    for image in images.values():
        assert image.get("newTag") not in (None, "", "latest"), image


# Kubernetes schemas.

@pytest.mark.parametrize("name,document", resources(),
                         ids=[f"{f}:{d['kind']}" for f, d in resources()])
def test_manifest_matches_schema(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_schema_rejects_unknown_field() -> None:
    """The strict schemas are in force: a misspelt field must fail validation."""
    document = copy.deepcopy(cronjob("rpa-modeler"))
    document["spec"]["concurrencyPolicyy"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the other tests check the files one by one")
    # `kubectl kustomize` renders locally; the kubeconfig path keeps it from finding a cluster.
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True,
                            timeout=60, check=True,
                            env={"KUBECONFIG": str(BASE / "no-kubeconfig"), "PATH": "/usr/bin"})
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_rendered_base_matches_schema() -> None:
    documents = rendered()
    assert len(documents) == len(resources())
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == NAMESPACE
        if document["kind"] == "CronJob":
            image = document["spec"]["jobTemplate"]["spec"]["template"]["spec"][
                "containers"][0]["image"]
            new = kustomization()["images"][0]
            assert image == f"{new['newName']}:{new['newTag']}"


# CronJobs: schedules and deadlines.

def test_cronjob_names() -> None:
    assert set(by_kind("CronJob")) == set(CRONJOBS)


@pytest.mark.parametrize("name", CRONJOBS)
def test_schedule_parses(name: str) -> None:
    schedule = cronjob(name)["spec"]["schedule"]
    assert schedule == CRONJOBS[name]["schedule"]
    assert croniter.is_valid(schedule)
    # Kubernetes rejects a TZ in the schedule when spec.timeZone is set.
    assert "TZ" not in schedule


@pytest.mark.parametrize("name", CRONJOBS)
def test_time_zone_known(name: str) -> None:
    zone = cronjob(name)["spec"]["timeZone"]
    assert zone == "Asia/Seoul"
    assert zone in zoneinfo.available_timezones()


@pytest.mark.parametrize("name", CRONJOBS)
def test_next_runs(name: str) -> None:
    spec = cronjob(name)["spec"]
    zone = zoneinfo.ZoneInfo(spec["timeZone"])
    runs = croniter(spec["schedule"], FROM_INSTANT.astimezone(zone))
    expected = [dt.datetime.fromisoformat(text) for text in CRONJOBS[name]["next"]]
    actual = [runs.get_next(dt.datetime) for _ in expected]
    assert actual == expected
    assert [time.utcoffset() for time in actual] == [dt.timedelta(hours=9)] * len(actual)


@pytest.mark.parametrize("name", CRONJOBS)
def test_no_overlapping_runs(name: str) -> None:
    assert cronjob(name)["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("name", CRONJOBS)
def test_deadlines_shorter_than_interval(name: str) -> None:
    spec = cronjob(name)["spec"]
    interval = interval_seconds(spec["schedule"], spec["timeZone"])
    active = spec["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    starting = spec["startingDeadlineSeconds"]
    assert 0 < active < interval
    assert 0 < starting < interval


def test_interval_helper() -> None:
    assert interval_seconds("*/30 * * * *", "Asia/Seoul") == 1800
    assert interval_seconds("10 9 * * *", "Asia/Seoul") == 86400


@pytest.mark.parametrize("name", CRONJOBS)
def test_job_limits(name: str) -> None:
    spec = cronjob(name)["spec"]
    job = spec["jobTemplate"]["spec"]
    assert 0 <= job["backoffLimit"] <= 3
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 10
    assert 1 <= spec["failedJobsHistoryLimit"] <= 10
    assert pod_spec(cronjob(name))["restartPolicy"] == "Never"
    # Exit 1 (an account failed) and 2 (bad settings) end the Job without a retry.
    rules = job["podFailurePolicy"]["rules"]
    fail = [rule for rule in rules if rule["action"] == "FailJob"]
    assert fail[0]["onExitCodes"]["values"] == [1, 2]
    assert fail[0]["onExitCodes"]["containerName"] == container(cronjob(name))["name"]


QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$")
UNITS = {None: 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def quantity(value: str | int) -> float:
    match = QUANTITY.match(str(value))
    assert match, f"unexpected quantity {value!r}"
    return float(match.group(1)) * UNITS[match.group(2)]


@pytest.mark.parametrize("name", CRONJOBS)
def test_resources_set(name: str) -> None:
    resources_spec = container(cronjob(name))["resources"]
    for key in ("cpu", "memory", "ephemeral-storage"):
        request = quantity(resources_spec["requests"][key])
        limit = quantity(resources_spec["limits"][key])
        assert 0 < request <= limit, key


# CronJobs: what they run and with which identity.

@pytest.mark.parametrize("name", CRONJOBS)
def test_runs_job_module(name: str) -> None:
    args = container(cronjob(name))["args"]
    module = CRONJOBS[name]["module"]
    assert args == [module]
    assert "command" not in container(cronjob(name)), "the image's ENTRYPOINT must stay"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not in the package yet")


@pytest.mark.parametrize("name", CRONJOBS)
def test_service_account_token(name: str) -> None:
    spec = pod_spec(cronjob(name))
    assert spec["serviceAccountName"] in by_kind("ServiceAccount")
    assert spec["automountServiceAccountToken"] is True
    default_path = Settings.model_fields["vault_k8s_token_path"].default
    assert str(default_path) == f"{TOKEN_MOUNT}/token"


def test_service_account_irsa() -> None:
    (account,) = by_kind("ServiceAccount").values()
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role)
    # Pods that do not ask for the token do not get it.
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", CRONJOBS)
def test_settings_from_configmap(name: str) -> None:
    sources = container(cronjob(name))["envFrom"]
    assert sources == [{"configMapRef": {"name": "accuinsight-rpa-settings"}}]
    assert "accuinsight-rpa-settings" in by_kind("ConfigMap")


@pytest.mark.parametrize("name", CRONJOBS)
def test_secrets_from_secret_refs(name: str) -> None:
    env = container(cronjob(name))["env"]
    names = {item["name"] for item in env}
    assert names == CRONJOBS[name]["secrets"]
    for item in env:
        assert "value" not in item, item["name"]
        reference = item["valueFrom"]["secretKeyRef"]
        assert (reference["name"], reference["key"]) == SECRET_REFS[item["name"]]
        assert not reference.get("optional", False)


# Security context.

@pytest.mark.parametrize("name", CRONJOBS)
def test_pod_security_context(name: str) -> None:
    context = pod_spec(cronjob(name))["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == IMAGE_UID
    assert context["runAsGroup"] == IMAGE_UID
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("name", CRONJOBS)
def test_container_security_context(name: str) -> None:
    context = container(cronjob(name))["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == IMAGE_UID
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("name", CRONJOBS)
def test_tmp_is_empty_dir(name: str) -> None:
    spec = pod_spec(cronjob(name))
    mounts = {mount["mountPath"]: mount["name"] for mount in container(cronjob(name))[
        "volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert "/tmp" in mounts
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert set(mounts) == {"/tmp"}, "only /tmp may be writable"


@pytest.mark.parametrize("name", CRONJOBS)
def test_no_host_access(name: str) -> None:
    spec = pod_spec(cronjob(name))
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key, False), key
    for volume in spec["volumes"]:
        assert "hostPath" not in volume


def test_namespace_enforces_restricted() -> None:
    (namespace,) = by_kind("Namespace").values()
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_pod_uid_matches_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", dockerfile, flags=re.MULTILINE)
    assert users[-1] == (str(IMAGE_UID), str(IMAGE_UID))


# Settings and secrets.

def secret_settings() -> set[str]:
    """Return the environment names of every SecretStr setting of rpa/settings.py."""
    names = set()
    for field, info in Settings.model_fields.items():
        if "SecretStr" in str(info.annotation) or info.annotation is SecretStr:
            names.add(f"{ENV_PREFIX}{field.upper()}")
    return names


def configmap_data() -> dict[str, str]:
    data: dict[str, str] = by_kind("ConfigMap")["accuinsight-rpa-settings"]["data"]
    return data


def test_configmap_keys() -> None:
    data = configmap_data()
    assert set(data) >= CONFIGMAP_KEYS
    assert data["RPA_VAULT_AUTH"] == "kubernetes"
    assert data["RPA_LOG_FORMAT"] == "json"
    known = {f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields}
    unknown = set(data) - known - LATER_JOB_SETTINGS
    # Settings ignores unknown variables, so a misspelt key would be lost without this check.
    assert not unknown, f"ConfigMap keys that no setting reads: {sorted(unknown)}"


def test_configmap_loads_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in configmap_data().items():
        monkeypatch.setenv(key, value)
    for key in SECRET_REFS:
        monkeypatch.setenv(key, "placeholder")
    settings = load_settings()
    assert settings.vault_auth == "kubernetes"
    assert settings.vault_k8s_role == configmap_data()["RPA_VAULT_K8S_ROLE"]
    assert settings.vault_kv_mount == "trial"
    assert settings.log_format == "json"


def test_configmap_holds_no_secret() -> None:
    data = configmap_data()
    for key in data:
        assert not SECRET_NAME.search(key), f"{key} belongs in a Secret"
    assert not secret_settings() & set(data)


def test_secret_settings_have_refs() -> None:
    """Every secret setting a CronJob passes comes from a Secret."""
    passed = {item["name"] for name in CRONJOBS for item in container(cronjob(name))["env"]}
    assert passed <= set(SECRET_REFS)
    for key in passed - LATER_JOB_SETTINGS:
        assert key in secret_settings(), f"{key} is not a SecretStr setting"


def test_no_secret_objects() -> None:
    kinds = {document["kind"] for _, document in resources()}
    assert "Secret" not in kinds


def k8s_files() -> Iterator[Path]:
    yield from sorted(path for path in (ROOT / "k8s").rglob("*") if path.is_file())


@pytest.mark.parametrize("path", list(k8s_files()), ids=lambda path: path.name)
def test_no_literal_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for label, pattern in SECRET_VALUES.items():
        match = pattern.search(text)
        assert match is None, f"{path.name} contains what looks like a {label}"


def test_secret_patterns_match() -> None:
    samples = {
        "Slack token": "xoxb-1234567890-abcdefghij",
        "AWS access key id": "AKIAABCDEFGHIJKLMNOP",
        "Vault token": "hvs.CAESIabcdefghijklmnopqrstu",
        "URL with a password": "mysql+pymysql://rpa:hunter2@db:3306/platform",
        "private key": "-----BEGIN RSA PRIVATE KEY-----",
    }
    for label, sample in samples.items():
        assert SECRET_VALUES[label].search(sample), label


# IAM policy.

def iam_statements() -> list[dict[str, Any]]:
    policy = json.loads(IAM_POLICY.read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17"
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed(action: str) -> list[dict[str, Any]]:
    return [statement for statement in iam_statements() if action in as_list(statement["Action"])]


def test_iam_statements_well_formed() -> None:
    sids = [statement["Sid"] for statement in iam_statements()]
    assert len(sids) == len(set(sids))
    for statement in iam_statements():
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{statement['Sid']}: wildcard action {action}"


REQUIRED_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScheduledActions",
    "autoscaling:UpdateAutoScalingGroup", "autoscaling:PutScheduledUpdateGroupAction",
    "autoscaling:DeleteScheduledAction",
    "elasticmapreduce:RunJobFlow", "elasticmapreduce:ListClusters",
    "elasticmapreduce:DescribeCluster", "elasticmapreduce:TerminateJobFlows",
    "elasticmapreduce:AddTags", "iam:PassRole",
    "s3:CreateBucket", "s3:PutBucketTagging", "s3:PutBucketVersioning", "s3:ListBucket",
    "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion",
    "iam:CreateRole", "iam:DeleteRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
    "iam:CreateUser", "iam:DeleteUser", "iam:CreateAccessKey", "iam:DeleteAccessKey",
    "iam:ListAccessKeys", "iam:CreatePolicy", "iam:DeletePolicy", "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
]


@pytest.mark.parametrize("action", REQUIRED_ACTIONS)
def test_iam_allows(action: str) -> None:
    assert allowed(action), f"{action} is not allowed"


# Resource patterns each service's actions are limited to. Resource "*" is allowed only for
# the calls in UNSCOPED_ACTIONS, whose APIs have no resource type.
RESOURCE_PREFIXES = {
    "autoscaling": ("arn:aws:autoscaling:ap-northeast-2:${aws:PrincipalAccount}:autoScalingGroup:"
                    "*:autoScalingGroupName/eks-trial-",),
    "elasticmapreduce": ("arn:aws:elasticmapreduce:ap-northeast-2:${aws:PrincipalAccount}:"
                         "cluster/",),
    "s3": ("arn:aws:s3:::accuinsight-trial-",),
    # The jobs create IAM identities under the path /accuinsight-rpa/ (rpa.clients.aws.IAM_PATH).
    "iam": tuple(f"arn:aws:iam::${{aws:PrincipalAccount}}:{kind}/accuinsight-rpa/trial-"
                 for kind in ("role", "user", "policy")),
}
UNSCOPED_ACTIONS = {
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScheduledActions",
    "elasticmapreduce:ListClusters", "elasticmapreduce:RunJobFlow", "s3:ListAllMyBuckets",
}
# Listing IAM identities is limited by path, since a listing has no name.
LISTED_BY_PATH = {"iam:ListRoles", "iam:ListUsers"}


def test_iam_resources_scoped() -> None:
    for statement in iam_statements():
        actions = as_list(statement["Action"])
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= UNSCOPED_ACTIONS, statement["Sid"]
                continue
            for action in actions:
                if action == "iam:PassRole":
                    continue
                if action in LISTED_BY_PATH:
                    assert re.fullmatch(r"arn:aws:iam::\$\{aws:PrincipalAccount\}:"
                                        r"(role|user)/accuinsight-rpa/\*", resource), resource
                    continue
                service = action.split(":")[0]
                assert resource.startswith(RESOURCE_PREFIXES[service]), (
                    f"{statement['Sid']}: {action} on {resource}")


def test_iam_pass_role_limited() -> None:
    """Only the EMR roles named by the settings' defaults may be passed, to EMR and EC2."""
    (statement,) = allowed("iam:PassRole")
    roles = [Settings.model_fields[name].default
             for name in ("emr_service_role", "emr_instance_profile")]
    assert as_list(statement["Resource"]) == [
        f"arn:aws:iam::${{aws:PrincipalAccount}}:role/{role}" for role in roles]
    services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
    assert set(services) == {"elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"}


def test_iam_attach_only_trial_policies() -> None:
    for action in ("iam:AttachRolePolicy", "iam:AttachUserPolicy"):
        for statement in allowed(action):
            condition = statement["Condition"]["ArnLike"]["iam:PolicyARN"]
            expected = "arn:aws:iam::${aws:PrincipalAccount}:policy/accuinsight-rpa/trial-*"
            assert condition == expected


def test_iam_emr_changes_need_tag() -> None:
    """Clusters are started with, and changed only when they carry, the managed-by tag."""
    (run,) = allowed("elasticmapreduce:RunJobFlow")
    tag = run["Condition"]["StringEquals"]["elasticmapreduce:RequestTag/managed-by"]
    assert tag == "accuinsight-rpa"
    for action in ("elasticmapreduce:TerminateJobFlows", "elasticmapreduce:AddTags"):
        for statement in allowed(action):
            condition = statement["Condition"]["StringEquals"]
            assert condition["elasticmapreduce:ResourceTag/managed-by"] == "accuinsight-rpa"


# boto3 operation names whose IAM action has another name.
S3_ACTIONS = {
    "HeadBucket": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions", "DeleteObjects": "s3:DeleteObject",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "ListBuckets": "s3:ListAllMyBuckets",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
SERVICE_PREFIXES = {"emr": "elasticmapreduce"}
# Services whose calls need no IAM permission (sts:GetCallerIdentity).
UNAUTHORIZED_SERVICES = {"sts"}


def boto3_operations() -> set[str]:
    """Return the IAM action of every boto3 call in rpa/clients/, e.g. autoscaling:Foo.

    Each class that assigns `self.<attribute> = session.client("<service>", ...)` is read,
    and its `self.<attribute>.<operation>` uses and `get_paginator("<operation>")` names
    collected.
    """
    actions = set()
    for path in sorted((ROOT / "rpa" / "clients").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                actions |= class_operations(node)
    return actions


def client_services(node: ast.ClassDef) -> dict[str, str]:
    """Return the service of each `self.<attribute> = session.client("<service>")` of a class."""
    services = {}
    for item in ast.walk(node):
        if not isinstance(item, ast.Assign | ast.AnnAssign):
            continue
        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
        value = item.value
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr == "client" and value.args
                and isinstance(value.args[0], ast.Constant)):
            continue
        for target in targets:
            if isinstance(target, ast.Attribute):
                services[target.attr] = str(value.args[0].value)
    return services


def class_operations(node: ast.ClassDef) -> set[str]:
    services = client_services(node)
    operations: set[tuple[str, str]] = set()
    for item in ast.walk(node):
        # self.<client>.<operation>, whether called there or passed on as a function.
        if (isinstance(item, ast.Attribute) and isinstance(item.value, ast.Attribute)
                and item.value.attr in services):
            operations.add((services[item.value.attr], item.attr))
        # get_paginator("<operation>"), also when the name is picked by a conditional.
        if (isinstance(item, ast.Call) and isinstance(item.func, ast.Attribute)
                and item.func.attr == "get_paginator"
                and isinstance(item.func.value, ast.Attribute)
                and item.func.value.attr in services):
            service = services[item.func.value.attr]
            for argument in item.args:
                operations |= {(service, constant.value) for constant in ast.walk(argument)
                               if isinstance(constant, ast.Constant)
                               and isinstance(constant.value, str)
                               and "_" in constant.value}
    return {iam_action(service, operation) for service, operation in operations
            if service not in UNAUTHORIZED_SERVICES and operation not in NOT_OPERATIONS}


# Client attributes that are not API operations.
NOT_OPERATIONS = {"get_paginator", "get_waiter", "close", "meta", "exceptions"}


def iam_action(service: str, operation: str) -> str:
    """Return the IAM action of a boto3 operation, e.g. ("emr", "list_clusters")."""
    prefix = SERVICE_PREFIXES.get(service, service)
    camel = "".join(part.capitalize() for part in operation.split("_"))
    if prefix == "s3" and camel in S3_ACTIONS:
        return S3_ACTIONS[camel]
    return f"{prefix}:{camel}"


def test_iam_covers_client_calls() -> None:
    calls = boto3_operations()
    assert "autoscaling:UpdateAutoScalingGroup" in calls
    missing = sorted(action for action in calls if not allowed(action))
    assert not missing, (f"k8s/iam-policy.json does not allow {missing}; add them, or map the "
                         "boto3 operation to its IAM action in S3_ACTIONS")


# Vault policy.

def vault_rules() -> dict[str, set[str]]:
    text = VAULT_POLICY.read_text(encoding="utf-8")
    rules = {}
    for path, body in re.findall(r'path\s+"([^"]+)"\s*\{([^}]*)\}', text):
        (listed,) = re.findall(r"capabilities\s*=\s*\[([^\]]*)\]", body)
        rules[path] = {item.strip().strip('"') for item in listed.split(",") if item.strip()}
    return rules


def vault_capabilities(request_path: str) -> set[str]:
    """Return the capabilities of the most specific rule matching a path (`*` is a prefix)."""
    matches = []
    for pattern, capabilities in vault_rules().items():
        if pattern.endswith("*"):
            if request_path.startswith(pattern[:-1]):
                matches.append((len(pattern) - 1, capabilities))
        elif pattern == request_path:
            matches.append((len(pattern) + 1, capabilities))
    return max(matches, key=lambda match: match[0])[1] if matches else set()


def test_vault_policy_paths_on_mount() -> None:
    mount = configmap_data()["RPA_VAULT_KV_MOUNT"]
    assert vault_rules()
    for path in vault_rules():
        assert path.startswith(f"{mount}/data/") or path.startswith(f"{mount}/metadata/"), path


@pytest.mark.parametrize("folder", FOLDERS)
def test_vault_policy_reads_folder(folder: str) -> None:
    assert "read" in vault_capabilities(f"trial/data/{folder}/trial_user01")
    assert "list" in vault_capabilities(f"trial/metadata/{folder}")
    assert "list" in vault_capabilities(f"trial/metadata/{folder}/")


def test_vault_policy_writes_only_passwords() -> None:
    writes = {"create", "update", "patch", "delete", "sudo", "deny"}
    assert {"create", "update"} <= vault_capabilities("trial/data/password/trial_user01")
    for folder in ("modeler", "mcm"):
        assert not vault_capabilities(f"trial/data/{folder}/trial_user01") & writes
        assert not vault_capabilities(f"trial/metadata/{folder}/trial_user01") & writes
    for path, capabilities in vault_rules().items():
        if path != "trial/data/password/*":
            assert not capabilities & writes, path


# Operator guide.

def default_text(value: Any, lang: str) -> str:
    if value is None:
        return "unset" if lang == "en" else "없음"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@pytest.mark.parametrize("lang", DOCS)
def test_guide_lists_every_setting(lang: str) -> None:
    text = DOCS[lang].read_text(encoding="utf-8")
    rows = {row.split("|")[1].strip(): row for row in text.splitlines()
            if row.startswith("| `RPA_")}
    for field, info in Settings.model_fields.items():
        name = f"`{ENV_PREFIX}{field.upper()}`"
        assert name in rows, f"{DOCS[lang].name} has no table row for {name}"
        default = default_text(info.default, lang)
        cells = [cell.strip() for cell in rows[name].split("|")]
        assert cells[2] == f"`{default}`", f"{name}: default {cells[2]} should be `{default}`"


@pytest.mark.parametrize("lang", DOCS)
def test_guide_names_cronjobs_and_secrets(lang: str) -> None:
    text = DOCS[lang].read_text(encoding="utf-8")
    for name, expected in CRONJOBS.items():
        assert name in text
        assert expected["schedule"] in text
    for secret, key in SECRET_REFS.values():
        assert secret in text
        assert f"{key}=" in text, f"the kubectl create secret command for {secret}"
    assert "kubectl apply -k k8s/cronjobs" in text
