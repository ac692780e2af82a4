"""One benchmark scenario: N accounts, the modeler and mcm jobs, twice each.

The stand-ins run in this process on 127.0.0.1 with an injected latency per request: the
platform, moto for AWS, and a Vault stand-in that serves the N accounts' records. Each job
runs as the CronJob runs it, `python -m rpa.<job>`, in a child process with `RPA_*`
settings that point at the stand-ins, so it reads its records from Vault and takes the
production code path (no `--sandbox` mode, which would add the sandbox's own set-up
calls). Its peak memory is its own, and it does not share a core with the stand-ins. The
stand-ins count the calls that reach them, from whichever process.

The first run of each job creates everything; the second, at the same `now`, should change
nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from benchmarks.inventory import write_inventory
from rpa.inventory import load_file, validate_records
from rpa.sandbox.moto_server import AwsCall
from rpa.sandbox.runtime import (
    AWS_KEY,
    SANDBOX_URLS,
    SSO_CLIENT_SECRET,
    TOKEN,
    Servers,
    seed_worker_groups,
    start_servers,
)
from rpa.sandbox.vault import VaultStandIn
from rpa.settings import load_settings

# The instant the example records are written for: a Friday in core time for MON-FRI.
NOW = dt.datetime.fromisoformat("2026-12-04T10:00+09:00")
# The Vault stand-in's token and mount; the records are test data, the token opens nothing else.
VAULT_TOKEN = "hvs.benchmark-token"
VAULT_MOUNT = "trial"
# AWS reads that list many resources in one call. The other reads name one resource each.
AWS_LISTINGS = frozenset({"ListBuckets", "ListRoles", "ListUsers", "DescribeAutoScalingGroups",
                          "DescribeScheduledActions", "ListClusters", "GetCallerIdentity"})


@dataclass
class Measure:
    """Cost of one run of one job: time, calls by service and kind, memory and the bound."""

    job: str
    run: str
    accounts: int
    concurrency: int
    # Wall time of the process, and the run time the job reports (without Python's start).
    seconds: float
    run_seconds: float
    exit_status: int
    actions: dict[str, int]
    platform: dict[str, dict[str, int]]
    aws: dict[str, dict[str, int]]
    listing_calls: int
    resource_reads: int
    writes: int
    repeated_aws_reads: int
    lower_bound_seconds: float
    peak_rss_mib: float
    schedule_row_writes: int
    # Vault calls (three folder listings and one read per record), counted apart.
    vault_calls: int = 0
    aws_operations: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """The stand-ins and files of one scenario, shared by its runs."""

    servers: Servers
    vault: VaultStandIn
    vault_url: str
    folder: Path
    inventory: Path
    accounts: int
    concurrency: int
    sites: dict[str, int]


class BenchmarkError(Exception):
    """A job of the benchmark did not run to its report; the message names the run."""


def job_environment(servers: Servers, folder: Path, concurrency: int,
                    vault_url: str) -> dict[str, str]:
    """Build the child's environment: settings pointing at the stand-ins, fake AWS keys.

    The benchmark's own RPA_* and AWS_* variables are left out, so no real service is named.
    """
    endpoints = servers.endpoints
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith(("RPA_", "AWS_"))}
    environ.update({
        "AWS_ACCESS_KEY_ID": AWS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_KEY,
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "RPA_AWS_ENDPOINT_URL": endpoints.aws_url, "RPA_DB_URL": endpoints.db_url,
        "RPA_MODELER_TOKEN": TOKEN, "RPA_MCM_TOKEN": TOKEN,
        "RPA_PIPELINE_URL": endpoints.site_url(SANDBOX_URLS["pipeline_url"]),
        "RPA_PORTAL_URL": endpoints.site_url(SANDBOX_URLS["portal_url"]),
        "RPA_SSO_URL": endpoints.site_url(SANDBOX_URLS["sso_url"]),
        "RPA_SSO_CLIENT_ID": "sandbox", "RPA_SSO_CLIENT_SECRET": SSO_CLIENT_SECRET,
        "RPA_CONCURRENCY": str(concurrency), "RPA_LOG_LEVEL": "WARNING", "RPA_LANG": "en",
        "RPA_VAULT_ADDR": vault_url, "RPA_VAULT_AUTH": "token", "RPA_VAULT_TOKEN": VAULT_TOKEN,
        "RPA_VAULT_KV_MOUNT": VAULT_MOUNT,
    })
    return environ


def prepare(servers: Servers, vault: VaultStandIn, vault_url: str, folder: Path,
            accounts: int, concurrency: int) -> Scenario:
    """Empty moto, put the records in Vault and create the worker-node groups of EKS."""
    requests.post(f"{servers.endpoints.aws_url}/moto-api/reset", timeout=30)
    inventory = write_inventory(folder / "inventory.json", accounts, servers.endpoints.site_url)
    raw = load_file(inventory)
    vault.load(raw)
    records = validate_records(raw).accounts.values()
    groups = [(group.name, group.min, group.max) for account in records
              if account.modeler and (group := account.modeler.autoscaling_group)]
    settings = load_settings(aws_endpoint_url=servers.endpoints.aws_url)
    session = boto3.Session(aws_access_key_id=AWS_KEY, aws_secret_access_key=AWS_KEY,
                            region_name=settings.aws_region)
    latency, servers.aws.latency_seconds = servers.aws.latency_seconds, 0.0
    try:
        seed_worker_groups(session, settings, groups, folder)
    finally:
        servers.aws.latency_seconds = latency
    return Scenario(servers, vault, vault_url, folder, inventory, accounts, concurrency,
                    count_sites(inventory))


def run_job(scenario: Scenario, job: str, label: str) -> Measure:
    """Run `python -m rpa.<job>` once, as the CronJob does, and measure it."""
    servers = scenario.servers
    servers.platform.reset_calls()
    servers.aws.reset_calls()
    scenario.vault.reset_calls()
    report_path = scenario.folder / f"{job}-{label}.json"
    memory_path = scenario.folder / f"{job}-{label}.memory"
    command = [sys.executable, "-m", "benchmarks.child", str(memory_path), f"rpa.{job}",
               "--now", NOW.isoformat(), "--output", "json"]
    environ = job_environment(servers, scenario.folder, scenario.concurrency,
                              scenario.vault_url)
    with report_path.open("wb") as output:
        started = time.perf_counter()
        status = subprocess.run(command, stdout=output, env=environ, check=False).returncode
        seconds = time.perf_counter() - started
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError:
        raise BenchmarkError(f"python -m rpa.{job} ({label} run, {scenario.accounts} "
                             f"accounts) exited {status} without a report; its error is "
                             "printed above") from None
    actions = report["actions"]
    return Measure(
        job=job, run=label, accounts=scenario.accounts, concurrency=scenario.concurrency,
        seconds=round(seconds, 2), run_seconds=round(report["summary"]["seconds"], 2),
        exit_status=status,
        actions={key: report["summary"][key] for key in ("planned", "done", "failed",
                                                         "skipped")},
        peak_rss_mib=round(int(memory_path.read_text(encoding="ascii")) / 1024, 1),
        schedule_row_writes=sum(1 for action in actions
                                if action["kind"] == "schedule_row.upsert"
                                and action["status"] == "done"),
        **count_calls(scenario))


def count_calls(scenario: Scenario) -> dict[str, Any]:
    """Sort the calls of the last run by service and kind, and work out the lower bound.

    A run has three steps, each of which waits for the one before: it reads the records
    from Vault, observes, and applies. In each, calls that do not depend on one another go
    out at most RPA_CONCURRENCY (C) at a time, and no more than RPA_SITE_CONCURRENCY (S) of
    them to one platform site. With latency L, the run takes at least L times:

    - Vault: 1 for the folder listings, sent together, plus reads / C;
    - observe: the pages of the longest listing, since each page waits for the one before,
      or 1 listing plus resource reads / C, since those reads need a listing first. All
      calls of one AWS listing operation count as pages of one listing, which overstates
      the step by a round trip where a job sends two listings of one operation together;
    - apply: writes / C, or the writes to the busiest site / min(S, C).

    Each part is rounded up to whole round trips.
    """
    servers = scenario.servers
    platform: dict[str, Counter[str]] = {}
    listing = resource_reads = writes = 0
    longest_listing = 0.0
    for (api, method, _), count in servers.platform.calls.items():
        # The SSO token request is a POST that changes nothing.
        kind = "read" if method == "GET" or api == "sso" else "write"
        platform.setdefault(api, Counter())[kind] += count
        listing += count if kind == "read" else 0
        writes += count if kind == "write" else 0
        if kind == "read":
            longest_listing = max(longest_listing, count / scenario.sites.get(api, 1))
    aws: dict[str, Counter[str]] = {}
    operations: Counter[str] = Counter()
    for call, count in servers.aws.calls.items():
        aws.setdefault(call.service, Counter())["read" if call.read else "write"] += count
        operations[f"{call.service}:{call.operation}"] += count
        listing += count if is_listing(call) else 0
        resource_reads += count if call.read and not is_listing(call) else 0
        writes += 0 if call.read else count
        if is_listing(call):
            longest_listing = max(longest_listing, count)
    vault_calls = scenario.vault.calls
    busiest_site = max((counts["write"] / scenario.sites.get(api, 1)
                        for api, counts in platform.items()), default=0.0)
    concurrency = scenario.concurrency
    site_concurrency = min(load_settings().site_concurrency, concurrency)
    vault_step = (1 if vault_calls["list"] else 0) + math.ceil(vault_calls["read"] / concurrency)
    observe_step = max(math.ceil(longest_listing),
                       (1 if listing else 0) + math.ceil(resource_reads / concurrency))
    apply_step = max(math.ceil(writes / concurrency), math.ceil(busiest_site / site_concurrency))
    return {"platform": {api: dict(counts) for api, counts in sorted(platform.items())},
            "aws": {service: dict(counts) for service, counts in sorted(aws.items())},
            "aws_operations": dict(sorted(operations.items())),
            "listing_calls": listing, "resource_reads": resource_reads, "writes": writes,
            "vault_calls": sum(vault_calls.values()),
            "repeated_aws_reads": servers.aws.repeated_reads(),
            "lower_bound_seconds": round(
                servers.aws.latency_seconds * (vault_step + observe_step + apply_step), 2)}


def is_listing(call: AwsCall) -> bool:
    return call.read and call.operation in AWS_LISTINGS


def count_sites(inventory: Path) -> dict[str, int]:
    """Count the platform sites per API, over which the per-site limit spreads the writes."""
    raw = load_file(inventory)
    return {"modeler": len({record["site"] for record in raw["modeler"].values()}),
            "mcm": len({record["site"] for record in raw["mcm"].values()}),
            "pipeline": 1, "portal": 1}


def run_scenario(accounts: int, concurrency: int, latency_seconds: float) -> list[Measure]:
    """Run each job twice on `accounts` fresh accounts: first run, then no-change run."""
    with tempfile.TemporaryDirectory(prefix="rpa-benchmark-") as name, \
            start_servers(Path(name), latency_seconds=latency_seconds,
                          aws_latency_seconds=latency_seconds) as servers:
        vault = VaultStandIn({}, token=VAULT_TOKEN, mount=VAULT_MOUNT,
                             latency_seconds=latency_seconds)
        vault_url = vault.start()
        try:
            scenario = prepare(servers, vault, vault_url, Path(name), accounts, concurrency)
            return [run_job(scenario, job, label) for job in ("modeler", "mcm")
                    for label in ("first", "no-change")]
        finally:
            vault.stop()
