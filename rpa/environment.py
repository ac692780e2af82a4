"""The outside world of one run: where records come from and the clients of every system.

`open_environment` builds it from the settings, or in `--sandbox` mode from the local
stand-ins (a running `rpa sandbox up`, else a temporary one for this run). Clients are made
on first use, so a dry-run of one job never logs in to systems it does not read.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rpa.clients import aws, errors
from rpa.clients.cloudz import CloudzClient
from rpa.clients.db import Database
from rpa.clients.http import JsonApi
from rpa.clients.mcm import McmClient
from rpa.clients.modeler import ModelerClient
from rpa.clients.pipeline import PipelineClient
from rpa.clients.portal import PortalClient
from rpa.clients.sso import SsoTokens
from rpa.clients.vault import VaultClient
from rpa.inventory import Inventory, RecordSource
from rpa.records import FileRecordStore, RecordStore
from rpa.settings import Settings

if TYPE_CHECKING:
    import boto3

    from rpa.job import RunOptions
    from rpa.sandbox.runtime import SandboxEndpoints

log = logging.getLogger(__name__)

EXAMPLE_INVENTORY = Path("examples/inventory.yaml")


class EnvironmentError(Exception):
    """The settings do not describe a usable environment; the message names the setting."""


@dataclass
class Environment:
    settings: Settings
    records: RecordSource
    sandbox: SandboxEndpoints | None = None
    boto_session: boto3.Session | None = None
    _database: Database | None = None
    _database_error: errors.ClientError | None = None
    _modeler: dict[str, ModelerClient] = field(default_factory=dict)
    _autoscaling: aws.AutoScaling | None = None
    _s3: aws.S3 | None = None
    _iam: aws.Iam | None = None
    _pipeline: PipelineClient | None = None
    _portal: PortalClient | None = None
    _sso: SsoTokens | None = None
    _cloudz: CloudzClient | None = None
    _mcm: dict[str, McmClient] = field(default_factory=dict)
    _emr: aws.Emr | None = None
    # A dry-run reads only: it applies no database migration either.
    read_only: bool = False
    # Three locks, so that a thread building a boto3 client (tens of milliseconds of CPU) or
    # connecting to the database does not hold up one that only needs a platform client to
    # send its first request. boto3 sessions must not build clients in two threads at once.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _aws_lock: threading.Lock = field(default_factory=threading.Lock)
    _database_lock: threading.Lock = field(default_factory=threading.Lock)

    def database(self) -> Database:
        """Return the database, connected on first use and migrated unless this is a dry-run.

        A failed connect is kept and raised again, so a database that is down costs one
        connect timeout per run, whichever thread tries first.
        """
        with self._database_lock:
            if self._database_error is not None:
                raise self._database_error
            if self._database is None:
                if self.settings.db_url is None:
                    raise EnvironmentError("RPA_DB_URL is not set: the jobs need the platform "
                                           "database for schedule rows and the audit table")
                try:
                    database = Database.connect(self.settings.db_url.get_secret_value())
                    if not self.read_only:
                        database.migrate()
                except errors.ClientError as err:
                    self._database_error = err
                    raise
                self._database = database
            return self._database

    def modeler(self, site: str) -> ModelerClient:
        """Return the Modeler client of a site, made once per base URL for the whole run."""
        with self._lock:
            if site not in self._modeler:
                self._modeler[site] = ModelerClient(self._json_api(site, "modeler"))
            return self._modeler[site]

    def autoscaling(self) -> aws.AutoScaling:
        with self._aws_lock:
            if self._autoscaling is None:
                self._autoscaling = aws.AutoScaling(self._session(), self.settings)
            return self._autoscaling

    def s3(self) -> aws.S3:
        with self._aws_lock:
            if self._s3 is None:
                self._s3 = aws.S3(self._session(), self.settings)
            return self._s3

    def iam(self) -> aws.Iam:
        with self._aws_lock:
            if self._iam is None:
                self._iam = aws.Iam(self._session(), self.settings)
            return self._iam

    def pipeline(self) -> PipelineClient:
        with self._lock:
            if self._pipeline is None:
                url = self._required_url("pipeline_url")
                self._pipeline = PipelineClient(self._platform_api(url, "pipeline"))
            return self._pipeline

    def portal(self) -> PortalClient:
        with self._lock:
            if self._portal is None:
                url = self._required_url("portal_url")
                self._portal = PortalClient(self._platform_api(url, "portal"))
            return self._portal

    def cloudz(self) -> CloudzClient:
        with self._lock:
            if self._cloudz is None:
                url = self._required_url("cloudz_url")
                self._cloudz = CloudzClient(JsonApi(
                    url, service="cloudz", token=None,
                    timeout_seconds=self.settings.http_timeout_seconds,
                    retries=self.settings.http_retries,
                    backoff_seconds=self.settings.http_backoff_seconds,
                    verify=self.settings.cloudz_verify,
                    max_in_flight=self.settings.site_concurrency))
            return self._cloudz

    def record_store(self) -> RecordStore:
        """Return where jobs write records back: the Vault the records came from, or their file."""
        if self.records.vault is not None:
            return self.records.vault
        assert self.records.path is not None
        return FileRecordStore(self.records.path)

    def _platform_api(self, url: str, service: str) -> JsonApi:
        """Build a client for a platform service that takes SSO tokens (Pipeline, portal)."""
        if self._sso is None:
            settings = self.settings
            sso_url = self._required_url("sso_url")
            if settings.sso_client_id is None or settings.sso_client_secret is None:
                raise EnvironmentError("RPA_SSO_CLIENT_ID and RPA_SSO_CLIENT_SECRET must be "
                                       "set for the Pipeline and portal calls")
            self._sso = SsoTokens(sso_url, client_id=settings.sso_client_id,
                                  client_secret=settings.sso_client_secret.get_secret_value(),
                                  timeout_seconds=settings.http_timeout_seconds,
                                  verify=settings.platform_verify)
        return JsonApi(url, service=service, token=self._sso,
                       timeout_seconds=self.settings.http_timeout_seconds,
                       retries=self.settings.http_retries,
                       backoff_seconds=self.settings.http_backoff_seconds,
                       verify=self.settings.platform_verify,
                       max_in_flight=self.settings.site_concurrency)

    def _required_url(self, name: str) -> str:
        url = getattr(self.settings, name)
        if url is None:
            raise EnvironmentError(f"RPA_{name.upper()} is not set")
        return self.sandbox.site_url(url) if self.sandbox else str(url)

    def mcm(self, site: str) -> McmClient:
        """Return the MCM client of a site, made once per base URL for the whole run."""
        with self._lock:
            if site not in self._mcm:
                token = self.settings.mcm_token
                if token is None:
                    raise EnvironmentError("RPA_MCM_TOKEN is not set")
                base_url = self.sandbox.site_url(site) if self.sandbox else site
                self._mcm[site] = McmClient(JsonApi(
                    base_url, service="mcm", token=token.get_secret_value(),
                    timeout_seconds=self.settings.http_timeout_seconds,
                    retries=self.settings.http_retries,
                    backoff_seconds=self.settings.http_backoff_seconds,
                    verify=self.settings.mcm_verify,
                    max_in_flight=self.settings.site_concurrency))
            return self._mcm[site]

    def emr(self) -> aws.Emr:
        with self._aws_lock:
            if self._emr is None:
                self._emr = aws.Emr(self._session(), self.settings)
            return self._emr

    def _session(self) -> boto3.Session:
        if self.boto_session is None:
            self.boto_session = aws.make_session(self.settings)
        return self.boto_session

    def _json_api(self, site: str, service: str) -> JsonApi:
        token = self.settings.modeler_token
        if token is None:
            raise EnvironmentError("RPA_MODELER_TOKEN is not set")
        base_url = self.sandbox.site_url(site) if self.sandbox else site
        return JsonApi(base_url, service=service, token=token.get_secret_value(),
                       timeout_seconds=self.settings.http_timeout_seconds,
                       retries=self.settings.http_retries,
                       backoff_seconds=self.settings.http_backoff_seconds,
                       verify=self.settings.modeler_verify,
                       max_in_flight=self.settings.site_concurrency)

    def prepare_sandbox(self, inventory: Inventory) -> None:
        """Create in moto the worker-node groups that EKS makes before this tool runs."""
        from rpa.sandbox.runtime import seed_worker_groups

        groups = [(group.name, group.min, group.max)
                  for account in inventory.accounts.values()
                  if account.modeler and (group := account.modeler.autoscaling_group)]
        assert self.sandbox is not None
        # The warm-up thread may be building clients from the same boto3 session.
        with self._aws_lock:
            created = seed_worker_groups(self._session(), self.settings, groups,
                                         Path(self.sandbox.folder))
        if created:
            log.info("sandbox: created %d worker-node groups in moto", len(created))

    def close(self) -> None:
        for client in self._modeler.values():
            client.api.close()
        for mcm in self._mcm.values():
            mcm.api.close()
        for platform in (self._pipeline, self._portal):
            if platform is not None:
                platform.api.close()
        if self._database is not None:
            self._database.close()


@contextmanager
def open_environment(settings: Settings, options: RunOptions) -> Iterator[Environment]:
    with ExitStack() as stack:
        sandbox = None
        if options.sandbox:
            try:
                from rpa.sandbox.runtime import open_sandbox
            except ImportError as err:
                raise EnvironmentError(f"--sandbox needs the sandbox extra ({err.name} is "
                                       "missing): pip install 'accuinsight-rpa[sandbox]'"
                                       ) from None
            sandbox = stack.enter_context(open_sandbox(settings))
            settings = sandbox.apply_to(settings)
        env = Environment(settings, record_source(settings, options, sandbox), sandbox,
                          read_only=options.dry_run)
        if sandbox is not None:
            env.boto_session = sandbox.boto_session(settings)
        stack.callback(env.close)
        yield env


def record_source(settings: Settings, options: RunOptions,
                  sandbox: SandboxEndpoints | None = None) -> RecordSource:
    """Pick the records: --inventory, else Vault, else (sandbox only) the bundled examples.

    The sandbox works on its own copy of the examples, because the jobs write records back
    (rotated passwords, `released_at`).
    """
    if options.inventory_path is not None:
        return RecordSource(path=options.inventory_path)
    if settings.vault_addr is not None:
        return RecordSource(vault=VaultClient(settings))
    if sandbox is not None:
        copy = Path(sandbox.folder) / "inventory.yaml"
        if not copy.exists():
            shutil.copyfile(example_inventory(), copy)
        return RecordSource(path=copy)
    raise EnvironmentError("no records: set RPA_VAULT_ADDR (and its auth settings) or pass "
                           "--inventory PATH")


def example_inventory() -> Path:
    """Find the bundled example accounts in the working folder or beside the package."""
    for candidate in (EXAMPLE_INVENTORY, Path(__file__).resolve().parent.parent
                      / EXAMPLE_INVENTORY):
        if candidate.is_file():
            return candidate
    raise EnvironmentError(f"{EXAMPLE_INVENTORY} not found: run from the repository root or "
                           "pass --inventory PATH")
