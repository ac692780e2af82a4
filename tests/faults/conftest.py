"""Fixtures of the fault tests; the helpers they use are in faultkit.py beside this file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

# The fault tests import their helpers as `faultkit`; pytest's importlib mode does not put
# test folders on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultkit import (
    EXPIRED,
    IN_USE,
    VAULT_ADDR,
    VAULT_TOKEN,
    AwsFaults,
    FakeVault,
    JobRunner,
    example_records,
    write_inventory,
)

from rpa.sandbox.runtime import STATE_FILE, Servers, start_servers
from rpa.settings import load_settings


@pytest.fixture
def run_job(capsys: pytest.CaptureFixture[str]) -> JobRunner:
    return JobRunner(capsys)


@pytest.fixture
def small_inventory(tmp_path: Path) -> Path:
    """The accounts in use of IN_USE and the expired EXPIRED, in a file jobs may write."""
    return write_inventory(tmp_path / "inventory.yaml", [*IN_USE, EXPIRED])


@pytest.fixture
def fake_vault(sandbox: Servers, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    """A FakeVault with IN_USE and EXPIRED, and RPA_VAULT_* settings of token login.

    Requests to the platform stand-in pass through `responses`; moto is reached through
    botocore, which `responses` does not see.
    """
    raw = example_records([*IN_USE, EXPIRED])
    vault = FakeVault({(folder, name): record for folder, records in raw.items()
                       for name, record in records.items()})
    monkeypatch.setenv("RPA_VAULT_ADDR", VAULT_ADDR)
    monkeypatch.setenv("RPA_VAULT_TOKEN", VAULT_TOKEN)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(sandbox.endpoints.platform_url)
        vault.install(mock)
        yield vault



@pytest.fixture
def aws_faults(sandbox: Servers) -> Iterator[AwsFaults]:
    """AWS error replies injected into the sandbox's boto3 session, which the jobs share.

    Clients copy the session's events when they are made, and every run makes its own, so
    the hook reaches the next job run.
    """
    faults = AwsFaults()
    session = sandbox.endpoints.boto_session(load_settings())
    # botocore types handlers as returning None, but a before-send handler may return a reply.
    handler: Any = faults.before_send
    session.events.register("before-send", handler, unique_id="fault-tests")
    try:
        yield faults
    finally:
        session.events.unregister("before-send", unique_id="fault-tests")


# Delay of every platform reply in `slow_sandbox`: a run of the small inventory takes a few
# seconds, long enough to start a second run or send a signal in its middle.
SLOW_REPLY_SECONDS = 0.1


@pytest.fixture
def slow_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    """The `sandbox` fixture's stand-ins with every platform reply delayed."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    with start_servers(folder, latency_seconds=SLOW_REPLY_SECONDS) as servers:
        requests.post(f"{servers.endpoints.aws_url}/moto-api/reset", timeout=10)
        (folder / STATE_FILE).write_text(json.dumps(asdict(servers.endpoints)),
                                         encoding="utf-8")
        monkeypatch.setenv("RPA_SANDBOX_DIR", str(folder))
        yield servers
