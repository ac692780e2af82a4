"""Generate an inventory of N accounts with the mix of examples/inventory.yaml.

Account i copies example account ((i - 1) mod 45) + 1: its usage period, schedule, projects,
worker-node group and EMR clusters, with its names made unique (`trial_user0001`, projects
`churn-model-0001`, group `eks-trial-user0001-workers`). So 1,000 accounts keep the example's
proportions: two thirds in their period, some before or after it, some free, two Modeler
sites, one MCM site. The record sites are mapped to the platform stand-in's URLs, so the jobs
run as in production, without the `--sandbox` mode. The file is JSON, which `--inventory`
reads as it reads YAML: the records in Vault are JSON too, and a YAML file of 1,000 accounts
would add seconds of parsing that a production run does not have.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rpa.environment import example_inventory

EXAMPLE_COUNT = 45


def account_name(index: int) -> str:
    return f"trial_user{index:04d}"


def generate_inventory(count: int, site_url: Callable[[str], str]) -> dict[str, Any]:
    """Return the records of `count` accounts, with sites mapped to URLs by `site_url`."""
    examples = yaml.safe_load(example_inventory().read_text(encoding="utf-8"))
    inventory: dict[str, dict[str, Any]] = {"password": {}, "modeler": {}, "mcm": {}}
    for index in range(1, count + 1):
        template = f"trial_user{(index - 1) % EXAMPLE_COUNT + 1:02d}"
        name = account_name(index)
        for folder, records in examples.items():
            if template in records:
                record = _renamed(folder, copy.deepcopy(records[template]), index, name)
                if "site" in record:
                    record["site"] = site_url(record["site"])
                inventory[folder][name] = record
    return inventory


def _renamed(folder: str, record: dict[str, Any], index: int, name: str) -> dict[str, Any]:
    """Give the copied record the names of account `index`, so no two accounts share one."""
    suffix = f"{index:04d}"
    if folder == "password":
        record["username"] = name
        record["email"] = f"{name}@trial.accuinsight.example"
        record["password"] = f"Example-Only-{suffix}x!Qv7"
    if folder == "modeler":
        for project in record.get("projects", []):
            project["name"] = f"{project['name'].rpartition('-')[0]}-{suffix}"
        group = record.get("autoscaling_group")
        if group is not None:
            group["name"] = f"eks-trial-user{suffix}-workers"
    return record


def write_inventory(path: Path, count: int, site_url: Callable[[str], str]) -> Path:
    """Write the records of `count` accounts as JSON to `path` and return the path."""
    records = generate_inventory(count, site_url)
    path.write_text(json.dumps(records, ensure_ascii=False, default=str), encoding="utf-8")
    return path
