"""Starting, finding and stopping the sandbox: the platform stand-in, moto and SQLite.

`rpa sandbox up` runs `python -m rpa.sandbox serve` in the background; it writes the
endpoints to `<dir>/sandbox.json` and keeps the stand-ins' state until `rpa sandbox down`.
A job run with `--sandbox` uses that sandbox, or starts a temporary one for the run. Every
server binds 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from pydantic import SecretStr

from rpa.sandbox.platform import PlatformStandIn
from rpa.settings import Settings

if TYPE_CHECKING:
    # Imported where the server starts, because it needs moto, the sandbox extra.
    from rpa.sandbox.moto_server import MotoServer

log = logging.getLogger(__name__)

STATE_FILE = "sandbox.json"
LOG_FILE = "sandbox.log"
TOKEN = "sandbox-token"
# Fake AWS credentials for moto; they never reach AWS because every client is pointed at moto.
AWS_KEY = "sandbox"
STARTUP_TIMEOUT_SECONDS = 30.0
# Base URLs of the platform services in the sandbox when the settings name none; each becomes
# a site folder on the platform stand-in.
SANDBOX_URLS = {
    "pipeline_url": "https://pipeline.sandbox.example",
    "portal_url": "https://portal.sandbox.example",
    "sso_url": "https://sso.sandbox.example",
    "cloudz_url": "https://cloudz.sandbox.example",
}
SSO_CLIENT_SECRET = "sandbox-client-secret"
WORKER_LAUNCH_CONFIGURATION = "rpa-sandbox-workers"
SEEDED_GROUPS_FILE = "seeded-groups"


@dataclass(frozen=True)
class SandboxEndpoints:
    platform_url: str
    aws_url: str
    db_url: str
    pid: int
    # Folder of the sandbox's files: its database and its copy of the example inventory.
    folder: str

    def site_url(self, site: str) -> str:
        """Map a record's site (a real base URL) to its folder on the platform stand-in."""
        return f"{self.platform_url}/{site_key(site)}"

    def apply_to(self, settings: Settings) -> Settings:
        """Point the settings at the stand-ins; RPA_DB_URL, when set, keeps its database."""
        return settings.model_copy(update={
            "aws_endpoint_url": self.aws_url,
            "modeler_token": SecretStr(TOKEN),
            "mcm_token": SecretStr(TOKEN),
            "db_url": settings.db_url or SecretStr(self.db_url),
            "pipeline_url": settings.pipeline_url or SANDBOX_URLS["pipeline_url"],
            "portal_url": settings.portal_url or SANDBOX_URLS["portal_url"],
            "sso_url": settings.sso_url or SANDBOX_URLS["sso_url"],
            "cloudz_url": settings.cloudz_url or SANDBOX_URLS["cloudz_url"],
            "sso_client_id": settings.sso_client_id or "sandbox",
            "sso_client_secret": settings.sso_client_secret or SecretStr(SSO_CLIENT_SECRET),
        })

    def boto_session(self, settings: Settings) -> boto3.Session:
        return _sandbox_session(settings.aws_region, self.aws_url)


@functools.lru_cache(maxsize=8)
def _sandbox_session(region: str, aws_url: str) -> boto3.Session:
    """Return the one session per moto endpoint and process.

    A new session loads botocore's service models again (about half a second for EMR and
    EC2), which adds up when tests run many jobs in one process.
    """
    from rpa.sandbox.emr import register_checks

    session = boto3.Session(aws_access_key_id=AWS_KEY, aws_secret_access_key=AWS_KEY,
                            region_name=region)
    register_checks(session, aws_url)
    return session


def site_key(site: str) -> str:
    parts = urlsplit(site)
    return (parts.netloc + parts.path.rstrip("/")).replace("/", "_") or "default"


@dataclass(frozen=True)
class Servers:
    """The stand-ins running in this process: their endpoints, the platform and AWS servers."""

    endpoints: SandboxEndpoints
    platform: PlatformStandIn
    aws: MotoServer


@contextmanager
def start_servers(folder: Path, *, latency_seconds: float = 0.0,
                  aws_latency_seconds: float = 0.0) -> Iterator[Servers]:
    """Start the stand-ins in this process; they stop when the block ends.

    `latency_seconds` delays each platform reply and `aws_latency_seconds` each AWS reply.
    """
    from rpa.sandbox.moto_server import MotoServer

    platform = PlatformStandIn(token=TOKEN, latency_seconds=latency_seconds)
    platform_url = platform.start()
    moto = MotoServer(latency_seconds=aws_latency_seconds)
    aws_url = moto.start()
    try:
        endpoints = SandboxEndpoints(platform_url, aws_url,
                                     f"sqlite:///{folder / 'sandbox.db'}", os.getpid(),
                                     str(folder))
        yield Servers(endpoints, platform, moto)
    finally:
        platform.stop()
        moto.stop()


def read_running(folder: Path) -> SandboxEndpoints | None:
    """Return the endpoints of the sandbox up in `folder`, or None when none is running."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        endpoints = SandboxEndpoints(**state)
    except (OSError, ValueError, TypeError):
        return None
    return endpoints if _is_alive(endpoints.pid) else None


@contextmanager
def open_sandbox(settings: Settings) -> Iterator[SandboxEndpoints]:
    running = read_running(settings.sandbox_dir)
    if running is not None:
        log.info("using the sandbox up in %s", settings.sandbox_dir)
        yield running
        return
    log.info("no sandbox is up in %s; starting a temporary one for this run",
             settings.sandbox_dir)
    with tempfile.TemporaryDirectory(prefix="rpa-sandbox-") as folder, \
            start_servers(Path(folder)) as servers:
        yield servers.endpoints


def serve(folder: Path, *, latency_seconds: float = 0.0) -> None:
    """Run the stand-ins in the foreground until SIGTERM or SIGINT."""
    folder.mkdir(parents=True, exist_ok=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    with start_servers(folder, latency_seconds=latency_seconds) as servers:
        endpoints = servers.endpoints
        state = folder / STATE_FILE
        state.write_text(json.dumps(asdict(endpoints)), encoding="utf-8")
        print(f"sandbox up: platform {endpoints.platform_url}, AWS {endpoints.aws_url}, "
              f"database {endpoints.db_url}", flush=True)
        try:
            stopped.wait()
        finally:
            state.unlink(missing_ok=True)
            # The stand-ins keep nothing after `down`, so their files go with them.
            for name in ("sandbox.db", "inventory.yaml", "inventory.yaml.lock",
                         SEEDED_GROUPS_FILE):
                (folder / name).unlink(missing_ok=True)


def up(folder: Path) -> SandboxEndpoints:
    """Start the sandbox in the background unless one is already up in `folder`."""
    running = read_running(folder)
    if running is not None:
        return running
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).unlink(missing_ok=True)
    with (folder / LOG_FILE).open("ab") as output:
        subprocess.Popen(
            [sys.executable, "-m", "rpa.sandbox", "serve", "--dir", str(folder)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        running = read_running(folder)
        if running is not None:
            return running
        time.sleep(0.1)
    raise RuntimeError(f"the sandbox did not start within {STARTUP_TIMEOUT_SECONDS:.0f} s; "
                       f"see {folder / LOG_FILE}")


def down(folder: Path) -> bool:
    """Stop the sandbox up in `folder`; returns False when none was running."""
    running = read_running(folder)
    if running is None:
        (folder / STATE_FILE).unlink(missing_ok=True)
        return False
    os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while _is_alive(running.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    (folder / STATE_FILE).unlink(missing_ok=True)
    return True


def seed_worker_groups(session: boto3.Session, settings: Settings,
                       groups: Iterable[tuple[str, int, int]], folder: Path) -> list[str]:
    """Create in moto the worker-node groups that EKS would have made, at their minimum size.

    The tool never creates Auto Scaling groups, so the sandbox creates them. Takes
    (name, min, max) and returns the names created now. The names seeded so far are kept in
    `<folder>/seeded-groups`, so a run whose groups all exist asks moto nothing.
    """
    marker = folder / SEEDED_GROUPS_FILE
    seeded = set(marker.read_text(encoding="utf-8").split()) if marker.exists() else set()
    wanted = {group for group in groups if group[0] not in seeded}
    if not wanted:
        return []
    client = session.client("autoscaling", endpoint_url=settings.aws_endpoint_url)
    names = sorted({name for name, _, _ in wanted})
    existing = {group["AutoScalingGroupName"]
                for page in client.get_paginator("describe_auto_scaling_groups").paginate(
                    AutoScalingGroupNames=names)
                for group in page["AutoScalingGroups"]}
    configurations = client.describe_launch_configurations(
        LaunchConfigurationNames=[WORKER_LAUNCH_CONFIGURATION])["LaunchConfigurations"]
    if not configurations:
        client.create_launch_configuration(LaunchConfigurationName=WORKER_LAUNCH_CONFIGURATION,
                                           ImageId="ami-12c6146b", InstanceType="m5.xlarge")
    created = []
    for name, min_size, max_size in sorted(wanted):
        if name in existing:
            continue
        client.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchConfigurationName=WORKER_LAUNCH_CONFIGURATION,
            MinSize=min_size, MaxSize=max_size, DesiredCapacity=min_size,
            AvailabilityZones=[f"{settings.aws_region}a"],
        )
        created.append(name)
    marker.write_text("\n".join(sorted(seeded | set(names))), encoding="utf-8")
    return created


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
