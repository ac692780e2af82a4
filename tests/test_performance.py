"""Tests of what makes a run fast and frugal: calls counted, concurrency bounded, order kept.

They count calls and concurrent requests. None measures time, which depends on the machine.
`python -m benchmarks.run` measures time (docs/benchmarks.md).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr

from rpa import mcm
from rpa.cli import main
from rpa.clients import aws, errors
from rpa.environment import Environment
from rpa.inventory import Account, RecordSource, validate_records
from rpa.job import Run, RunOptions
from rpa.parallel import map_bounded, read_all
from rpa.sandbox.platform import PlatformStandIn
from rpa.sandbox.runtime import TOKEN, Servers
from rpa.settings import load_settings

CORE = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
# Sites of examples/inventory.yaml, and the accounts in their period at CORE with a record.
MODELER_SITES = 2
MCM_SITES = 1
MODELER_ACCOUNTS_IN_PERIOD = 30


# Bounded reads.

class Gauge:
    """Counts the calls under way, and the most at once."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.current -= 1


def test_map_bounded_keeps_order_and_bound() -> None:
    gauge = Gauge()

    def square(number: int) -> int:
        with gauge:
            time.sleep(0.01)
            return number * number

    assert map_bounded(square, list(range(40)), workers=4) == [n * n for n in range(40)]
    assert gauge.peak == 4


def test_map_bounded_one_worker_runs_in_caller_thread() -> None:
    threads = map_bounded(lambda _: threading.current_thread(), [1, 2, 3], workers=1)
    assert threads == [threading.current_thread()] * 3


def test_map_bounded_raises_first_error() -> None:
    def fail_on_three(number: int) -> int:
        if number == 3:
            raise ValueError("three")
        return number

    with pytest.raises(ValueError, match="three"):
        map_bounded(fail_on_three, list(range(10)), workers=3)


def test_read_all_returns_client_errors_in_place() -> None:
    failure = errors.NotFound("gone", service="s3")

    def fail() -> int:
        raise failure

    assert read_all([lambda: 1, fail, lambda: 3], workers=2) == [1, failure, 3]


# The per-site limit.

class CountingStandIn(PlatformStandIn):
    """The platform stand-in, counting the requests under way per site."""

    def __init__(self, latency_seconds: float) -> None:
        super().__init__(token=TOKEN, latency_seconds=latency_seconds)
        self.gauges: dict[str, Gauge] = collections.defaultdict(Gauge)
        self.overall = Gauge()

    def _respond(self, method: str, target: str, authorization: str | None,
                 body: bytes) -> Any:
        site = target.split("/")[1]
        with self.gauges[site], self.overall:
            return super()._respond(method, target, authorization, body)


@pytest.fixture
def counting_stand_in() -> Iterator[CountingStandIn]:
    stand_in = CountingStandIn(latency_seconds=0.05)
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


def test_site_limit_caps_calls_per_site(counting_stand_in: CountingStandIn,
                                        tmp_path: Path) -> None:
    settings = load_settings(modeler_token=SecretStr(TOKEN), site_concurrency=2,
                             concurrency=8, http_retries=0)
    env = Environment(settings, RecordSource(path=tmp_path / "inventory.yaml"))
    sites = [counting_stand_in.site_url(key) for key in ("site-a", "site-b")]
    try:
        # Eight workers read both sites at once, twelve listings each.
        map_bounded(lambda site: env.modeler(site).list_projects(), sites * 12, workers=8)
    finally:
        env.close()

    assert counting_stand_in.gauges["site-a"].peak == 2
    assert counting_stand_in.gauges["site-b"].peak == 2
    # Each site had as many calls in flight as its limit allows, at the same time.
    assert counting_stand_in.overall.peak == 4


def test_high_site_limit_allows_every_worker(counting_stand_in: CountingStandIn,
                                              tmp_path: Path) -> None:
    settings = load_settings(modeler_token=SecretStr(TOKEN), site_concurrency=8,
                             concurrency=8, http_retries=0)
    env = Environment(settings, RecordSource(path=tmp_path / "inventory.yaml"))
    site = counting_stand_in.site_url("site-a")
    try:
        map_bounded(lambda _: env.modeler(site).list_projects(), list(range(24)), workers=6)
    finally:
        env.close()

    assert counting_stand_in.gauges["site-a"].peak == 6


class SlowReads:
    """The EMR, MCM and database clients of an mcm run, in one object that counts reads."""

    def __init__(self) -> None:
        self.gauge = Gauge()

    def _read(self, value: Any) -> Any:
        with self.gauge:
            time.sleep(0.05)
        return value

    def emr(self) -> SlowReads:
        return self

    def mcm(self, site: str) -> SlowReads:
        return self

    def database(self) -> SlowReads:
        return self

    def list_clusters(self, *args: Any, **kwargs: Any) -> list[Any]:
        return self._read([])

    def list_schedules(self) -> list[Any]:
        return self._read([])

    def read_schedule_rows(self, job: str) -> dict[str, Any]:
        return self._read({})


def mcm_accounts(sites: int) -> list[Account]:
    schedule = {"days": "MON-FRI", "start": "09:00", "end": "18:00"}
    cluster = {"name": "spark", "release_label": "emr-7.2.0", "applications": ["Spark"],
               "master_instance_type": "m5.xlarge", "core_instance_type": "m5.xlarge",
               "core_count": 1}
    names = [f"user_{index}" for index in range(sites)]
    inventory = validate_records({
        "password": {name: {"username": name, "password": "pw-Example-1!",
                            "start_date": "2026-12-01", "end_date": "2026-12-31"}
                     for name in names},
        "modeler": {},
        "mcm": {name: {"site": f"https://mcm-{name}.example", "schedule": schedule,
                       "clusters": [cluster]} for name in names}})
    assert inventory.errors == []
    return list(inventory.accounts.values())


@pytest.mark.parametrize(("concurrency", "peak"), [(8, 7), (1, 1)])
def test_mcm_observes_listings_together(concurrency: int, peak: int) -> None:
    reads = SlowReads()
    settings = load_settings(concurrency=concurrency)
    run = Run("mcm", "run-1", RunOptions(now=CORE), settings, cast(Environment, reads))

    observed = mcm.observe(run, mcm_accounts(sites=2), mcm.Limits())

    # Two EMR listings, two per MCM site and the schedule rows.
    assert reads.gauge.peak == peak
    assert sorted(observed.registered) == ["https://mcm-user_0.example",
                                           "https://mcm-user_1.example"]


# Whole runs against the sandbox.

def run_json(capsys: pytest.CaptureFixture[str], job: str, *args: str) -> dict[str, Any]:
    status = main([job, "--sandbox", "--output", "json", "--now", CORE.isoformat(), *args])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == 0, report["errors"]
    return report


def reset_counts(sandbox: Servers) -> None:
    sandbox.platform.reset_calls()
    sandbox.aws.reset_calls()


def platform_writes(sandbox: Servers) -> dict[tuple[str, str, str], int]:
    # The SSO token request is a POST that changes nothing.
    return {key: count for key, count in sandbox.platform.calls.items()
            if key[1] != "GET" and key[0] != "sso"}


def aws_operations(sandbox: Servers) -> dict[str, int]:
    return {f"{call.service}:{call.operation}": count
            for call, count in sandbox.aws.calls.items()}


def test_modeler_no_change_run_writes_nothing(sandbox: Servers,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "modeler")
    reset_counts(sandbox)
    second = run_json(capsys, "modeler")

    assert first["summary"]["done"] > 0
    assert second["actions"] == []
    assert platform_writes(sandbox) == {}
    assert [call for call in sandbox.aws.calls if not call.read] == []
    assert sandbox.aws.repeated_reads() == 0


def test_modeler_observes_with_one_listing_per_site(sandbox: Servers,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "modeler")
    reset_counts(sandbox)
    run_json(capsys, "modeler")

    calls = sandbox.platform.calls
    assert calls[("modeler", "GET", "/api/v1/projects")] == MODELER_SITES
    # Some accounts are outside core time on that Friday, so running items are listed too.
    assert calls[("modeler", "GET", "/api/v1/workspaces")] == MODELER_SITES
    assert calls[("modeler", "GET", "/api/v1/deployments")] == MODELER_SITES
    assert calls[("pipeline", "GET", "/api/v1/storages")] == 1
    assert calls[("portal", "GET", "/api/v1/groups/{group}/members")] == 1
    assert calls[("sso", "POST", "/oauth2/token")] == 1
    assert sum(calls.values()) == 3 * MODELER_SITES + 3
    # AWS: one listing per resource type, and the reads that exist only per resource.
    assert aws_operations(sandbox) == {
        "autoscaling:DescribeAutoScalingGroups": 1,
        "autoscaling:DescribeScheduledActions": 1,
        "s3:ListBuckets": 1,
        "iam:ListRoles": 1,
        "s3:GetBucketTagging": MODELER_ACCOUNTS_IN_PERIOD,
        "s3:GetPublicAccessBlock": MODELER_ACCOUNTS_IN_PERIOD,
        "s3:GetBucketEncryption": MODELER_ACCOUNTS_IN_PERIOD,
        "s3:GetBucketVersioning": MODELER_ACCOUNTS_IN_PERIOD,
        "iam:GetRolePolicy": MODELER_ACCOUNTS_IN_PERIOD,
    }


def test_new_identities_read_caller_once(sandbox: Servers,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    reset_counts(sandbox)
    run_json(capsys, "modeler")

    # New IAM identities trust the account's root, read with one STS call for all of them.
    assert aws_operations(sandbox)["sts:GetCallerIdentity"] == 1


def test_mcm_no_change_run_writes_nothing(sandbox: Servers,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "mcm")
    reset_counts(sandbox)
    second = run_json(capsys, "mcm")

    assert first["summary"]["done"] > 0
    assert second["actions"] == []
    assert platform_writes(sandbox) == {}
    assert sandbox.platform.calls == collections.Counter({
        ("mcm", "GET", "/api/v1/clusters"): MCM_SITES,
        ("mcm", "GET", "/api/v1/cluster-schedules"): MCM_SITES})
    # One listing of the active clusters and one of the last day's failed ones.
    assert aws_operations(sandbox) == {"elasticmapreduce:ListClusters": 2}


@pytest.mark.parametrize(("concurrency", "thread"),
                         [("8", "rpa-warm-up_0"), ("1", "MainThread")])
def test_emr_client_built_during_reads(sandbox: Servers, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, concurrency: str,
                                        thread: str) -> None:
    built: list[str] = []
    make_client = aws.Emr.__init__

    def record(self: aws.Emr, *args: Any) -> None:
        built.append(threading.current_thread().name)
        make_client(self, *args)

    monkeypatch.setattr(aws.Emr, "__init__", record)

    run_json(capsys, "mcm", "--dry-run", "--concurrency", concurrency)

    assert built == [thread]


def test_concurrent_apply_reports_in_plan_order(sandbox: Servers,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    planned = run_json(capsys, "modeler", "--dry-run")
    applied = run_json(capsys, "modeler", "--concurrency", "8")

    def keys(report: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [(a["account"], a["kind"], a["target"]) for a in report["actions"]]

    assert len({account for account, _, _ in keys(applied)}) > 8
    assert keys(applied) == keys(planned)
    assert {a["status"] for a in applied["actions"]} == {"done"}
