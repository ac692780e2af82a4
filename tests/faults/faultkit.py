"""Helpers of the fault tests: job runs through the CLI, a Vault on `responses`, small
inventories, and views of what the stand-ins were asked to change.

Every job here runs against the sandbox stand-ins of the `sandbox` fixture (platform on
127.0.0.1, moto, SQLite unless RPA_DB_URL names MariaDB), and reads its records from an
inventory file of a few example accounts or from `FakeVault`. The fixtures that build on
these helpers are in conftest.py beside this file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
import responses
import yaml
from botocore.awsrequest import AWSResponse

from rpa.cli import main
from rpa.inventory import FOLDERS, load_file
from rpa.sandbox.runtime import AWS_KEY, TOKEN, Servers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inventory.yaml"
# Friday 2026-12-04 10:00 in Seoul: core time of the MON-FRI 09:00-18:00 accounts. On this
# day trial_user01 … 30 are in use and trial_user34 … 38 have expired.
CORE = "2026-12-04T10:00+09:00"
# Three accounts in use on two Modeler sites (two of them with an EMR cluster), and an
# expired one.
IN_USE = ["trial_user01", "trial_user02", "trial_user03"]
EXPIRED = "trial_user36"
VAULT_ADDR = "http://127.0.0.1:8200"
VAULT_TOKEN = "hvs.fault-tests-static"
APPROLE_SECRET_ID = "approle-secret-fault-tests"
K8S_JWT = "eyJhbGciOi.fault-tests-service-account.c2ln"


@dataclass
class JobRun:
    """One run of a job through the CLI: exit status, JSON report and what it printed."""

    status: int
    report: dict[str, Any]
    out: str
    err: str

    def outcomes(self, account: str | None = None) -> list[tuple[str, str, str, str]]:
        """(account, kind, target, status) of each action, of one account when given."""
        return [(a["account"], a["kind"], a["target"], a["status"])
                for a in self.report.get("actions", [])
                if account is None or a["account"] == account]

    def statuses(self, account: str) -> set[str]:
        return {status for *_, status in self.outcomes(account)}

    def error_fields(self) -> list[tuple[str, str]]:
        return sorted((e["account"], e["field"]) for e in self.report.get("errors", []))


class JobRunner:
    """Runs `rpa <job> --sandbox --output json` in this process with a fixed `--now`."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, job: str, *args: str, now: str = CORE) -> JobRun:
        status = main([job, "--sandbox", "--output", "json", "--now", now, *args])
        out, err = self._capsys.readouterr()
        report = json.loads(out) if out.strip() else {}
        return JobRun(status, report, out, err)




def write_inventory(path: Path, accounts: list[str], raw: dict[str, Any] | None = None) -> Path:
    """Write the named example accounts (or of `raw`) to `path` as YAML and return it."""
    source = raw if raw is not None else load_file(EXAMPLES)
    kept = {folder: {name: record for name, record in source.get(folder, {}).items()
                     if name in accounts} for folder in FOLDERS}
    path.write_text(yaml.safe_dump(kept, allow_unicode=True), encoding="utf-8")
    return path




def example_records(accounts: list[str]) -> dict[str, dict[str, Any]]:
    raw = load_file(EXAMPLES)
    return {folder: {name: record for name, record in raw[folder].items() if name in accounts}
            for folder in FOLDERS}


def platform_writes(sandbox: Servers) -> Counter[tuple[str, str, str]]:
    """Calls to the platform stand-in that change something (the SSO token POST aside)."""
    return Counter({key: count for key, count in sandbox.platform.calls.items()
                    if key[1] != "GET" and key[0] != "sso"})


def aws_client(sandbox: Servers, service: str) -> Any:
    make: Any = boto3.client
    return make(service, region_name="ap-northeast-2",
                        endpoint_url=sandbox.endpoints.aws_url, aws_access_key_id=AWS_KEY,
                        aws_secret_access_key=AWS_KEY)


def add_project(sandbox: Servers, site: str, owner: str, name: str) -> dict[str, Any]:
    """Create a project on a Modeler site of the stand-in, as a user would by hand."""
    reply = requests.post(f"{sandbox.endpoints.site_url(site)}/api/v1/projects", json={
        "name": name, "owner": owner,
        "resources": {"cpu": 1, "memory_gib": 1, "gpu": 0, "storage_gib": 1}},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    reply.raise_for_status()
    project: dict[str, Any] = reply.json()
    return project


def start_retired_clusters(sandbox: Servers, account: str, count: int) -> None:
    """Clusters that the mcm job made for `account` but that its record no longer lists."""
    emr = aws_client(sandbox, "emr")
    for index in range(count):
        emr.run_job_flow(
            Name=f"rpa-{account}/retired-{index}", ReleaseLabel="emr-7.2.0",
            Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge",
                       "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
            JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
            Tags=[{"Key": "managed-by", "Value": "accuinsight-rpa"},
                  {"Key": "rpa:account", "Value": account}])


def modeler_site(account: str) -> str:
    site: str = load_file(EXAMPLES)["modeler"][account]["site"]
    return site


@dataclass
class FakeVault:
    """Vault's KV v2, AppRole and Kubernetes login API on `responses`, serving records.

    Tokens from a login, and the static VAULT_TOKEN, stay valid until `expire_tokens` or
    `expire_after` ends them. Vault then replies 403, as it does for an expired token.
    `faults` maps (method, path under /v1/) to replies sent before the normal ones.
    """

    records: dict[tuple[str, str], dict[str, Any]]
    mount: str = "trial"
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    faults: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=lambda: {VAULT_TOKEN})
    logins: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    expire_countdown: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, mock: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(VAULT_ADDR) + r"/v1/.*")
        for method in ("GET", "LIST", "POST"):
            mock.add_callback(method, pattern, callback=self._reply)

    def fail(self, method: str, path: str, status: int, body: Any, times: int = 1) -> None:
        self.faults.setdefault((method, path), []).extend([(status, body)] * times)

    def expire_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def expire_after(self, count: int) -> None:
        """End every token after `count` more KV requests."""
        self.expire_countdown = count

    def _reply(self, request: Any) -> tuple[int, dict[str, str], str]:
        with self._lock:
            status, body = self._answer(request)
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    def _answer(self, request: Any) -> tuple[int, Any]:
        path = urlsplit(request.url).path.removeprefix("/v1/")
        self.requests.append((request.method, path))
        queued = self.faults.get((request.method, path))
        if queued:
            return queued.pop(0)
        if path.startswith("auth/"):
            return self._login(path)
        if request.headers.get("X-Vault-Token") not in self.valid_tokens:
            return 403, {"errors": ["permission denied"]}
        if self.expire_countdown is not None:
            self.expire_countdown -= 1
            if self.expire_countdown <= 0:
                self.valid_tokens.clear()
                self.expire_countdown = None
        mount, _, rest = path.partition("/")
        if mount != self.mount:
            return 404, {"errors": [f"no handler for route \"{path}\". route entry not found."]}
        area, _, key = rest.partition("/")
        if request.method == "LIST" and area == "metadata":
            return self._list(key)
        folder, _, name = key.partition("/")
        if request.method == "GET" and area == "data":
            return self._read((folder, name))
        if request.method == "POST" and area == "data":
            return self._write((folder, name), json.loads(request.body))
        return 405, {"errors": ["unsupported operation"]}

    def _login(self, path: str) -> tuple[int, Any]:
        token = f"hvs.login-{len(self.logins) + 1}"
        self.logins.append(path)
        self.valid_tokens.add(token)
        return 200, {"auth": {"client_token": token, "lease_duration": 3600,
                              "renewable": True}}

    def _list(self, folder: str) -> tuple[int, Any]:
        keys = sorted(name for (kind, name) in self.records if kind == folder)
        if not keys:
            return 404, {"errors": []}
        return 200, {"data": {"keys": keys}}

    def _read(self, key: tuple[str, str]) -> tuple[int, Any]:
        if key not in self.records:
            return 404, {"errors": []}
        version = self.versions.get(key, 1)
        if key in self.deleted:
            return 404, {"data": {"data": None, "metadata": {
                "version": version, "deletion_time": "2026-12-01T00:00:00Z",
                "destroyed": False}}}
        return 200, {"data": {"data": self.records[key], "metadata": {
            "version": version, "deletion_time": "", "destroyed": False}}}

    def _write(self, key: tuple[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        version = self.versions.get(key, 1 if key in self.records else 0)
        if body.get("options", {}).get("cas") != version:
            return 400, {"errors": ["check-and-set parameter did not match the current "
                                    "version"]}
        self.records[key] = body["data"]
        self.versions[key] = version + 1
        return 200, {"data": {"version": version + 1, "deletion_time": "", "destroyed": False}}


class _Body:
    """The raw body of a reply that botocore reads as a stream."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def aws_error_reply(protocol: str, status: int, code: str, message: str) -> AWSResponse:
    """Build an AWS error reply in the encoding of the service's protocol."""
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1"}
    elif protocol == "rest-xml":
        body = (f"<Error><Code>{code}</Code><Message>{message}</Message></Error>").encode()
        headers = {"Content-Type": "application/xml"}
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>fault</RequestId>"
                "</ErrorResponse>").encode()
        headers = {"Content-Type": "text/xml"}
    # botocore's stubs ask for HTTPHeaders, but any mapping of header names works.
    reply_headers: Any = headers
    return AWSResponse("https://fault.invalid/", status, reply_headers, _Body(body))


@dataclass
class _AwsFault:
    operation: str
    match: str
    status: int
    code: str
    times: int


@dataclass
class AwsFaults:
    """Error replies that botocore gets instead of moto's, through the `before-send` event.

    `attempts` counts every request botocore sent per operation, including those that got a
    fault, so a test sees how often botocore retried.
    """

    attempts: Counter[str] = field(default_factory=Counter)
    _faults: list[_AwsFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation: str, status: int, code: str, *, match: str = "",
            times: int = 1) -> None:
        """Reply with this error to the next `times` requests of `operation` whose body or
        URL contains `match`."""
        self._faults.append(_AwsFault(operation, match, status, code, times))

    def before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        with self._lock:
            self.attempts[operation] += 1
            for fault in self._faults:
                if fault.operation == operation and fault.match in body + request.url:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return aws_error_reply(PROTOCOLS[event_name.split(".")[1]], fault.status,
                                           fault.code, f"injected {fault.code}")
        return None


# botocore's protocol of each service the jobs call, by the service id of its events.
PROTOCOLS = {"auto-scaling": "query", "iam": "query", "sts": "query", "emr": "json",
             "s3": "rest-xml"}


def spawn_job(job: str, *args: str, now: str = CORE) -> subprocess.Popen[str]:
    """Start `python -m rpa.<job> --sandbox --output json` as a process of its own.

    It inherits this process's environment, so it finds the test's sandbox through
    RPA_SANDBOX_DIR and uses the same lock namespace.
    """
    return subprocess.Popen(
        [sys.executable, "-m", f"rpa.{job}", "--sandbox", "--output", "json", "--now", now,
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def finish(process: subprocess.Popen[str], timeout_seconds: float = 120) -> JobRun:
    out, err = process.communicate(timeout=timeout_seconds)
    report = json.loads(out) if out.strip() else {}
    return JobRun(process.returncode, report, out, err)


def wait_for(condition: Callable[[], bool], timeout_seconds: float = 60,
             what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_seconds} s")
        time.sleep(0.05)
