"""Secrets. No password of the inventory, old or rotated, is in anything the jobs print,
log, report, write to the audit tables or post to Slack. Secret settings are SecretStr. TLS
verification is on unless a setting turns it off, and then a warning says so."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from faultkit import (
    EXPIRED,
    IN_USE,
    FakeVault,
    JobRunner,
    write_inventory,
)
from pydantic import SecretStr

from rpa.clients.vault import VaultClient
from rpa.environment import Environment
from rpa.inventory import RecordSource, load_file
from rpa.sandbox.runtime import SANDBOX_URLS, Servers, site_key
from rpa.sandbox.slack import SlackStandIn
from rpa.settings import PLAIN_URL_FIELDS, Settings, SettingsError, env_name, load_settings

NOW = "2026-12-04T10:00+09:00"
SITE_A = site_key("https://modeler-a.trial.accuinsight.example")
# An account whose record is invalid for another reason than its password, and one whose
# password fields are themselves invalid: their values must stay masked in the errors.
BROKEN = {"trial_user04": {"note": "x" * 1001},
          "trial_user05": {"pending_password": ["Pending-Secret-05x!"]}}


def passwords_of(raw: dict[str, Any]) -> set[str]:
    """Every password and pending password in the records, nested ones included."""
    found: set[str] = set()
    for record in raw["password"].values():
        for name in ("password", "pending_password"):
            value = record.get(name)
            values = value if isinstance(value, list) else [value]
            found |= {str(item) for item in values if item}
    return found


def broken_inventory(tmp_path: Path) -> Path:
    path = write_inventory(tmp_path / "inventory.yaml", [*IN_USE, EXPIRED, "trial_user35",
                                                         *BROKEN])
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, change in BROKEN.items():
        raw["password"][name].update(change)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def database_text(url: str) -> list[str]:
    """Every row of every rpa_ table, as text."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = [name for name in sa.inspect(conn).get_table_names()
                      if name.startswith("rpa_")]
            return [str(tuple(row)) for table in tables
                    for row in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def slack_text(slack: SlackStandIn) -> list[str]:
    return [message.text + json.dumps(message.blocks, ensure_ascii=False)
            for message in slack.messages]


def test_no_password_in_any_output(sandbox: Servers, slack: SlackStandIn,
                                   run_job: JobRunner, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0ALERTS01")
    monkeypatch.setenv("RPA_LOG_LEVEL", "DEBUG")
    inventory = broken_inventory(tmp_path)
    before = passwords_of(load_file(inventory))
    # A failed create, so that the modeler run posts a failure alert.
    sandbox.platform.fail_next(method="POST", path_contains=f"{SITE_A}/api/v1/projects",
                               status=500)
    runs: list[tuple[str, list[str], str]] = [
        ("modeler", ["--dry-run", "--lang", "en"], "text"),
        ("modeler", [], "json"),
        ("mcm", [], "text"),
        ("endsvc", ["--dry-run"], "text"),
        ("endsvc", [], "json"),
        ("endsvc", [], "text"),
        ("noti", [], "text"),
    ]
    collected: list[str] = []
    for job, args, log_format in runs:
        monkeypatch.setenv("RPA_LOG_FORMAT", log_format)
        result = run_job(job, "--inventory", str(inventory), *args, now=NOW)
        collected += [result.out, result.err]
    after = passwords_of(load_file(inventory))
    collected += database_text(sandbox.endpoints.db_url) + slack_text(slack)

    rotated = after - before
    cloudz = site_key(SANDBOX_URLS["cloudz_url"])
    assert {sandbox.platform.accounts.cloudz_password(cloudz, name)
            for name in (EXPIRED, "trial_user35")} == rotated
    assert len(rotated) == 2
    assert len(slack.messages) >= 2
    assert any("***" in text for text in collected)
    text = "\n".join(collected)
    for secret in before | after:
        assert secret not in text


def test_no_password_via_vault(sandbox: Servers, fake_vault: FakeVault, run_job: JobRunner,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_LOG_LEVEL", "DEBUG")
    before = {record["password"] for (folder, _), record in fake_vault.records.items()
              if folder == "password"}

    result = run_job("endsvc", "--account", EXPIRED, now=NOW)
    again = run_job("endsvc", "--account", EXPIRED, "--dry-run", now=NOW)

    after = {record["password"] for (folder, _), record in fake_vault.records.items()
             if folder == "password"}
    assert result.status == 0, result.err
    assert len(after - before) == 1
    assert "wrote Vault trial/password/trial_user36 fields" in result.err
    text = "\n".join([result.out, result.err, again.out, again.err,
                      *database_text(sandbox.endpoints.db_url)])
    for secret in before | after:
        assert secret not in text


# Fields whose names look secret but hold none, and why.
NOT_SECRET = {
    # the file that contains the service-account token, not the token
    "vault_k8s_token_path",
    # the length and characters of the passwords that endsvc generates
    "password_length",
    "password_specials",
}


def test_secret_settings_are_secretstr() -> None:
    named = [name for name in Settings.model_fields
             if any(word in name for word in ("token", "secret", "password"))]
    assert named
    for name in named:
        annotation = Settings.model_fields[name].annotation
        is_secret = annotation in (SecretStr, SecretStr | None)
        assert is_secret or name in NOT_SECRET, f"{name} is not a SecretStr"
    assert Settings.model_fields["db_url"].annotation == SecretStr | None


def test_url_settings_are_listed() -> None:
    """Every plain URL setting is checked for credentials; the database URL is secret."""
    urls = {name for name, info in Settings.model_fields.items()
            if name.endswith(("_url", "_addr", "_site", "_uri"))
            and info.annotation not in (SecretStr, SecretStr | None)}
    assert urls == set(PLAIN_URL_FIELDS)


@pytest.mark.parametrize("name", PLAIN_URL_FIELDS)
def test_url_with_password_rejected(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_VAULT_TOKEN", "hvs.unused")
    monkeypatch.setenv(env_name(name), "https://rpa:Url-Secret-7@host.example/path")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert f"{env_name(name)} must not contain a user name or password" in str(caught.value)
    assert "Url-Secret-7" not in str(caught.value)


def build_client(name: str, tmp_path: Path) -> Callable[[Settings], object]:
    """How to make the client that each *_verify setting governs."""
    def environment(settings: Settings) -> Environment:
        return Environment(settings, RecordSource(path=tmp_path / "inventory.yaml"))

    builders: dict[str, Callable[[Settings], object]] = {
        "vault_verify": VaultClient,
        "modeler_verify": lambda settings: environment(settings).modeler(
            "https://modeler.example").api,
        "mcm_verify": lambda settings: environment(settings).mcm("https://mcm.example").api,
        "platform_verify": lambda settings: environment(settings).pipeline().api,
        "cloudz_verify": lambda settings: environment(settings).cloudz().api,
    }
    return builders[name]


VERIFY_SETTINGS = sorted(name for name in Settings.model_fields if name.endswith("_verify"))
CLIENT_SETTINGS = {
    "vault_addr": "https://vault.example:8200", "vault_token": "hvs.unused",
    "modeler_token": "modeler-unused", "mcm_token": "mcm-unused",
    "pipeline_url": "https://pipeline.example", "sso_url": "https://sso.example",
    "sso_client_id": "rpa", "sso_client_secret": "sso-unused",
    "cloudz_url": "https://cloudz.example",
}


@pytest.mark.parametrize("name", VERIFY_SETTINGS)
def test_verify_off_warns(name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build = build_client(name, tmp_path)

    with caplog.at_level(logging.WARNING):
        build(load_settings(**CLIENT_SETTINGS))
        quiet = [r.getMessage() for r in caplog.records]
        client = build(load_settings(**CLIENT_SETTINGS, **{name: False}))

    assert quiet == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("TLS verification is off for ")
    assert client is not None


@pytest.mark.parametrize("name", VERIFY_SETTINGS)
def test_verify_on_by_default(name: str, tmp_path: Path) -> None:
    client = build_client(name, tmp_path)(load_settings(**CLIENT_SETTINGS))

    sessions = ([client._client.adapter.session] if name == "vault_verify"  # type: ignore[attr-defined]
                else [client._retrying, client._single])  # type: ignore[attr-defined]
    # On: True, or the CA bundle that REQUESTS_CA_BUNDLE names, read when the client is built.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    assert [session.verify for session in sessions] in ([True] * len(sessions),
                                                        [bundle] * len(sessions))


@pytest.mark.parametrize("name", VERIFY_SETTINGS)
def test_verify_off_reaches_requests(name: str, tmp_path: Path) -> None:
    client = build_client(name, tmp_path)(load_settings(**CLIENT_SETTINGS, **{name: False}))

    if name == "vault_verify":
        # hvac sends each request with the verify value it keeps, not the session's.
        adapter = client._client.adapter  # type: ignore[attr-defined]
        assert adapter._kwargs["verify"] is False
        assert adapter.session.verify is False
    else:
        assert client._retrying.verify is False  # type: ignore[attr-defined]
        assert client._single.verify is False  # type: ignore[attr-defined]
