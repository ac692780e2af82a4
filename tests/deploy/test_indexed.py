"""Offline checks of k8s/indexed: the base CronJobs with modeler and mcm as Indexed Jobs.

The overlay is rendered with `kubectl kustomize` (the tests that need it are skipped without
kubectl, as the base's rendering test is) and validated against the Kubernetes schemas in
strict mode. Everything the overlay does not change must render as the base does, so the
base's checks in test_manifests.py hold for it too.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rpa.settings import load_settings
from rpa.shard import INDEX_VARIABLE, Shard, shard_from_environment

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "k8s" / "cronjobs"
INDEXED = ROOT / "k8s" / "indexed"
# The overlay needs backoffLimitPerIndex, generally available since Kubernetes 1.33.
KUBERNETES_VERSION = "1.34"
SHARDED = ("rpa-modeler", "rpa-mcm")
# Fields of the Job spec that the overlay sets; the rest must stay as in the base.
INDEXED_FIELDS = ("completionMode", "completions", "parallelism", "backoffLimitPerIndex",
                  "backoffLimit", "podFailurePolicy")


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((INDEXED / "kustomization.yaml").read_text("utf-8"))
    return data


def render(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the overlay cannot be rendered")
    # `kubectl kustomize` renders locally; the kubeconfig path keeps it from finding a cluster.
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True,
                            text=True, timeout=60, check=True,
                            env={"KUBECONFIG": str(folder / "no-kubeconfig"), "PATH": "/usr/bin"})
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


def job_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]
    return spec


def container(cronjob: dict[str, Any]) -> dict[str, Any]:
    (only,) = job_spec(cronjob)["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def shard_count(cronjob: dict[str, Any]) -> int:
    values = [item["value"] for item in container(cronjob)["env"]
              if item["name"] == "RPA_SHARD_COUNT"]
    assert len(values) == 1, "RPA_SHARD_COUNT must be set once"
    return int(values[0])


def test_kustomization_lists_every_file() -> None:
    listed = [patch["path"] for patch in kustomization()["patches"]]
    files = sorted(path.name for path in INDEXED.glob("*.yaml")
                   if path.name != "kustomization.yaml")
    assert sorted(listed) == files
    assert kustomization()["resources"] == ["../cronjobs"]


@pytest.mark.parametrize("path", sorted(INDEXED.glob("cronjob-*.yaml")), ids=lambda p: p.name)
def test_patch_names_a_sharded_cronjob(path: Path) -> None:
    patch = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert (patch["apiVersion"], patch["kind"]) == ("batch/v1", "CronJob")
    assert patch["metadata"]["name"] in SHARDED
    assert patch["metadata"]["namespace"] == "accuinsight-rpa"


def test_rendered_overlay_matches_schema() -> None:
    documents = render(INDEXED)
    assert set(documents) == set(render(BASE))
    for document in documents.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", SHARDED)
def test_sharded_cronjob_is_indexed(name: str) -> None:
    cronjob = render(INDEXED)[("CronJob", name)]
    spec = job_spec(cronjob)
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == shard_count(cronjob) >= 2
    assert spec["backoffLimitPerIndex"] >= 1
    assert spec["backoffLimit"] >= spec["completions"] * spec["backoffLimitPerIndex"]


@pytest.mark.parametrize("name", SHARDED)
def test_failed_shard_does_not_stop_others(name: str) -> None:
    rules = job_spec(render(INDEXED)[("CronJob", name)])["podFailurePolicy"]["rules"]
    assert "FailJob" not in {rule["action"] for rule in rules}
    (fail,) = [rule for rule in rules if rule["action"] == "FailIndex"]
    assert fail["onExitCodes"] == {"containerName": "rpa", "operator": "In", "values": [1, 2]}
    ignored = [rule for rule in rules if rule["action"] == "Ignore"]
    assert ignored[0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]


@pytest.mark.parametrize("name", SHARDED)
def test_every_index_gets_a_shard(name: str) -> None:
    count = shard_count(render(INDEXED)[("CronJob", name)])
    settings = load_settings(shard_count=count)
    shards = [shard_from_environment({INDEX_VARIABLE: str(index)}, settings.shard_count)
              for index in range(count)]
    assert shards == [Shard(index, count) for index in range(count)]


def test_overlay_changes_nothing_else() -> None:
    base, indexed = render(BASE), render(INDEXED)
    for key, document in indexed.items():
        if key[0] == "CronJob" and key[1] in SHARDED:
            document = without_indexing(document)
        assert document == base[key], f"{key} differs from the base"


def without_indexing(cronjob: dict[str, Any]) -> dict[str, Any]:
    """Return the CronJob with the overlay's fields put back as the base has them."""
    stripped = copy.deepcopy(cronjob)
    spec = job_spec(stripped)
    base_spec = job_spec(render(BASE)[("CronJob", cronjob["metadata"]["name"])])
    for name in INDEXED_FIELDS:
        spec.pop(name, None)
        if name in base_spec:
            spec[name] = base_spec[name]
    env = container(stripped)["env"]
    env[:] = [item for item in env if item["name"] != "RPA_SHARD_COUNT"]
    return stripped
