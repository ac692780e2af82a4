"""Fixtures shared by the whole test suite.

Every test runs with fake AWS credentials and without the developer's `RPA_*` settings, so no
test can reach real AWS or pick up a real Vault or database by accident, and slack_sdk sends
to 127.0.0.1 only. The `mysql_url` fixture gives the local MariaDB with none of the tool's
tables in it; `slack` gives a Slack stand-in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from rpa.clients.db import Database
from rpa.sandbox.runtime import STATE_FILE, Servers, start_servers
from rpa.sandbox.slack import Channel, SlackStandIn

# Variables of the test harness itself, kept when the RPA_* settings are cleared.
TEST_ENV_PREFIX = "RPA_TEST_"
DEFAULT_TEST_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                         ) -> None:
    """Replace AWS credentials with fake ones and clear the tool's settings."""
    for name in list(os.environ):
        if name.startswith("AWS_") or (
            name.startswith("RPA_") and not name.startswith(TEST_ENV_PREFIX)
        ):
            monkeypatch.delenv(name)
    # Files that do not exist, so boto3 reads no profile of the developer's ~/.aws.
    missing = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    # The credentials above come first in boto3's chain, and this also stops any fallback to
    # the instance metadata service.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # MariaDB's locks are server-wide: a namespace per test process keeps its job runs from
    # waiting for the runs of another test session on the same server.
    monkeypatch.setenv("RPA_LOCK_NAMESPACE", f"test-{os.getpid()}")


def drop_rpa_tables(engine: sa.Engine) -> None:
    """Drop every table whose name starts with rpa_, the migrations table included."""
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("rpa_"):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS `{name}`"))


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """Return the URL of the test MariaDB with no rpa_* table, and drop them again after.

    The server is named by RPA_TEST_DB_URL (default root@127.0.0.1:3306/test). When it
    cannot be reached the test fails under CI, which must run it, and is skipped elsewhere.
    """
    url = os.environ.get("RPA_TEST_DB_URL", DEFAULT_TEST_DB_URL)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        drop_rpa_tables(engine)
    except sa.exc.OperationalError as err:
        engine.dispose()
        reason = f"test database {sa.make_url(url).render_as_string()} is not reachable: {err.orig}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield url
    finally:
        drop_rpa_tables(engine)
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mariadb)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database of each kind, empty at the start of the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rpa.db'}"
    else:
        url = request.getfixturevalue("mysql_url")
    database = Database.connect(url)
    database.migrate()
    yield database
    database.close()


# The bot token, channels and membership of the `slack` fixture's stand-in.
SLACK_TEST_TOKEN = "xoxb-test-7f3a9c"
SLACK_REPORT_CHANNEL = Channel("C0REPORT01", "accuinsight-trial")
SLACK_ALERT_CHANNEL = Channel("C0ALERTS01", "accuinsight-trial-alerts")
SLACK_OUTSIDE_CHANNEL = Channel("C0OUTSIDE1", "elsewhere", is_member=False)


@pytest.fixture(autouse=True)
def slack_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make slack_sdk fail a test that sends to any host but 127.0.0.1, such as slack.com."""
    from urllib.parse import urlsplit

    from slack_sdk.web import base_client

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    send = base_client.urlopen

    def send_to_loopback(request: Any, *args: Any, **kwargs: Any) -> Any:
        host = urlsplit(request.full_url).hostname
        if host != "127.0.0.1":
            raise AssertionError(f"a test sent a Slack request to {host}")
        return send(request, *args, **kwargs)

    monkeypatch.setattr(base_client, "urlopen", send_to_loopback)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """A Slack stand-in on 127.0.0.1, and the RPA_SLACK_* settings of the report aimed at it."""
    channels = [SLACK_REPORT_CHANNEL, SLACK_ALERT_CHANNEL, SLACK_OUTSIDE_CHANNEL]
    with SlackStandIn(token=SLACK_TEST_TOKEN, channels=channels) as stand_in:
        monkeypatch.setenv("RPA_SLACK_BASE_URL", stand_in.base_url)
        monkeypatch.setenv("RPA_SLACK_TOKEN", SLACK_TEST_TOKEN)
        monkeypatch.setenv("RPA_SLACK_CHANNEL", SLACK_REPORT_CHANNEL.id)
        yield stand_in


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rpa.db'}"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    """Stand-ins in this process, found by the CLI through RPA_SANDBOX_DIR."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    with start_servers(folder) as servers:
        # moto keeps its state per process; start every test from an empty AWS.
        requests.post(f"{servers.endpoints.aws_url}/moto-api/reset", timeout=10)
        (folder / STATE_FILE).write_text(json.dumps(asdict(servers.endpoints)),
                                         encoding="utf-8")
        monkeypatch.setenv("RPA_SANDBOX_DIR", str(folder))
        yield servers
