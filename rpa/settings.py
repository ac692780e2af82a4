"""Settings of a run, read once from `RPA_*` environment variables.

`load_settings()` builds one frozen `Settings` in `main()` before any client exists. A missing
or invalid value raises `SettingsError` naming the variable, and the job exits with status 2.
Every setting is listed with its default in docs/operations.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RPA_"
# Base URL of the Slack Web API; tests and the sandbox point RPA_SLACK_BASE_URL elsewhere.
SLACK_API_URL = "https://slack.com/api/"
# URL settings that are plain text: logs and error messages show them, so they may not carry
# a user name or password. RPA_DB_URL, which does, is a SecretStr.
PLAIN_URL_FIELDS = ("vault_addr", "pipeline_url", "portal_url", "sso_url", "cloudz_url",
                    "grant_modeler_site", "grant_mcm_site", "aws_endpoint_url", "emr_log_uri",
                    "slack_base_url")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


class Settings(BaseSettings):
    """Every setting of the jobs; the field `vault_addr` is read from `RPA_VAULT_ADDR`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # Vault (KV v2) with the account records.
    vault_addr: str | None = None
    vault_auth: Literal["token", "approle", "kubernetes"] = "token"
    vault_token: SecretStr | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_k8s_role: str | None = None
    vault_k8s_mount: str = "kubernetes"
    vault_k8s_token_path: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    vault_kv_mount: str = "trial"
    vault_namespace: str | None = None
    vault_verify: bool = True
    vault_timeout_seconds: float = Field(10.0, gt=0)

    # Platform REST APIs.
    modeler_token: SecretStr | None = None
    modeler_verify: bool = True
    mcm_token: SecretStr | None = None
    mcm_verify: bool = True
    http_timeout_seconds: float = Field(10.0, gt=0)
    http_retries: int = Field(3, ge=0, le=10)
    http_backoff_seconds: float = Field(0.5, ge=0)

    # Base resources of every account: S3 bucket, IAM identity, Pipeline storage, group.
    # `{account_dns}` is the account name in lower case with "_" as "-", as S3 needs.
    base_resources: bool = True
    bucket_template: str = "accuinsight-{account_dns}"
    iam_kind: Literal["role", "user"] = "role"
    iam_name_template: str = "trial-{account_dns}"
    # Principal allowed to assume the account roles; empty means this AWS account's root.
    iam_trust_principal: str | None = None
    account_group: str = "trial-users"
    pipeline_url: str | None = None
    portal_url: str | None = None
    sso_url: str | None = None
    sso_client_id: str | None = None
    sso_client_secret: SecretStr | None = None
    platform_verify: bool = True

    # CloudZ, where the account logins live, and the passwords the end-of-service job sets.
    cloudz_url: str | None = None
    cloudz_verify: bool = True
    password_length: int = Field(20, ge=16, le=128)
    # Special characters CloudZ accepts; the default leaves out those that break shells or
    # URLs ($ ` ' " \ / ? & # % ! space and brackets).
    password_specials: str = Field("-_.+=,", min_length=1, pattern=r"^[^\sA-Za-z0-9]+$")
    # Days after end_date before the end-of-service job releases an account.
    grace_days: int = Field(0, ge=0, le=365)

    # `rpa trial grant`: the folder of its templates (<name>.yaml; unset means the templates
    # in the package) and the site base URLs it writes (unset means the template's `site`).
    grant_template_dir: Path | None = None
    grant_modeler_site: str | None = Field(None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    grant_mcm_site: str | None = Field(None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    # `rpa report savings`: price of one node hour, in price_currency. The EMR price counts
    # master and core nodes alike. Unset leaves the cost out of the report.
    price_worker_node_hour: float | None = Field(None, ge=0)
    price_emr_node_hour: float | None = Field(None, ge=0)
    price_currency: str = Field("USD", min_length=1, max_length=8)

    # AWS: credentials come from boto3's usual chain (IRSA in the cluster).
    aws_region: str = "ap-northeast-2"
    aws_endpoint_url: str | None = None
    aws_max_attempts: int = Field(8, ge=1, le=20)

    # EMR clusters of the mcm job. The roles are EMR's default role names; the subnet and
    # log bucket are left to EMR's defaults when unset.
    emr_service_role: str = "EMR_DefaultRole"
    emr_instance_profile: str = "EMR_EC2_DefaultRole"
    emr_subnet_id: str | None = None
    emr_log_uri: str | None = None
    # After this many Spot losses of one cluster within 24 hours, it is recreated On-Demand.
    spot_fallback_after: int = Field(2, ge=1)
    # A cluster still STARTING this long after its creation is replaced, once.
    emr_starting_limit_minutes: int = Field(45, ge=1)

    # Database with the schedule rows and the audit table: a SQLAlchemy URL such as
    # mysql+pymysql://user:password@host:3306/platform or sqlite:///path.
    db_url: SecretStr | None = None

    # Safety limits and run shape.
    max_deletes: int = Field(10, ge=0)
    concurrency: int = Field(8, ge=1, le=64)
    # How long a run waits for the lock of its job or of an account that another run holds
    # (rpa/locks.py) before it stops or skips the account.
    lock_wait_seconds: float = Field(10.0, ge=0, le=3600)
    # Middle part of the lock names; unset means the database name of RPA_DB_URL. MySQL
    # locks are server-wide, so two deployments that share a database must set different
    # values.
    lock_namespace: str | None = Field(None, min_length=1, max_length=40,
                                       pattern=r"^[A-Za-z0-9_.-]+$")
    # Calls in flight to one platform base URL at a time, so that a slow site is not also
    # flooded by every worker at once.
    site_concurrency: int = Field(4, ge=1, le=64)
    # Pods that share one run as a Kubernetes Indexed Job; each takes JOB_COMPLETION_INDEX.
    shard_count: int = Field(1, ge=1, le=1000)
    scheduled_action_count: int = Field(2, ge=0, le=10)

    # Output.
    lang: Literal["ko", "en"] = "ko"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Slack: the daily report of rpa.noti and the failure alerts of the other jobs. Channels
    # are best given as IDs (C…), which stay valid when a channel is renamed.
    slack_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_alert_channel: str | None = None
    slack_base_url: str = Field(SLACK_API_URL, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    # Retries after a 429 (each waits the Retry-After seconds) and after a connection error.
    slack_rate_limit_retries: int = Field(3, ge=0, le=10)
    slack_connection_retries: int = Field(2, ge=0, le=10)

    # Sandbox: the folder of the stand-ins that `rpa sandbox up` started.
    sandbox_dir: Path = Path(".rpa-sandbox")

    @model_validator(mode="after")
    def _check_templates(self) -> Settings:
        for name in ("bucket_template", "iam_name_template"):
            try:
                getattr(self, name).format(account="a", account_dns="a")
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"{env_name(name)} may use only {{account}} and "
                                 f"{{account_dns}}: {err}") from None
        return self

    @model_validator(mode="after")
    def _check_vault_auth(self) -> Settings:
        if self.vault_addr is None:
            return self
        needed = {
            "token": ["vault_token"],
            "approle": ["vault_role_id", "vault_secret_id"],
            "kubernetes": ["vault_k8s_role"],
        }[self.vault_auth]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            names = ", ".join(env_name(name) for name in missing)
            raise ValueError(f"RPA_VAULT_AUTH={self.vault_auth} needs {names}")
        return self

    @model_validator(mode="after")
    def _check_urls_without_credentials(self) -> Settings:
        for name in PLAIN_URL_FIELDS:
            value = getattr(self, name)
            if value and "@" in urlsplit(value).netloc:
                # The value is left out of the message, since it contains the password.
                raise ValueError(f"{env_name(name)} must not contain a user name or password; "
                                 "give credentials in their own settings")
        return self


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, apply command-line overrides, and validate.

    Raises SettingsError with the variable name and the reason.
    """
    try:
        return Settings(**overrides)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            field = ".".join(str(part) for part in item["loc"])
            where = env_name(field) if field else "settings"
            # The input is left out because a wrong value of a secret setting is still secret.
            problems.append(f"{where}: {item['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


# Variables with the prefix that are not settings: the test suite's own.
NON_SETTING_PREFIXES = ("RPA_TEST_",)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for `RPA_*` variables that name no setting, with the closest setting.

    pydantic-settings ignores such variables, so a misspelt one would silently leave its
    setting at the default.
    """
    known = {env_name(name) for name in Settings.model_fields}
    warnings = []
    for name in sorted(environ):
        if (not name.startswith(ENV_PREFIX) or name in known
                or name.startswith(NON_SETTING_PREFIXES)):
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a setting and is ignored{hint}")
    return warnings
