"""Vault KV v2 access through hvac: login, listing, reading and check-and-set writes.

Secret values never leave this module in a message: errors and logs name the mount, the path
and the field names only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from rpa.clients import errors
from rpa.clients.http import settle_environment
from rpa.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "vault"
T = TypeVar("T")
# A check-and-set write that keeps losing to other writers gives up after this many tries.
CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class Secret:
    """One KV v2 secret as read: its fields and the version a check-and-set write must name."""

    path: str
    data: dict[str, Any]
    version: int


class DeletedVersion(errors.ClientError):
    """The latest version of a secret is soft-deleted (a destroyed one reads as NotFound)."""


class VaultClient:
    """KV v2 calls on one mount, logging in again once when the token stops working."""

    def __init__(self, settings: Settings, *, client: hvac.Client | None = None) -> None:
        if settings.vault_addr is None:
            raise ValueError("RPA_VAULT_ADDR is not set")
        self.addr = settings.vault_addr
        self.mount = settings.vault_kv_mount
        self._settings = settings
        # Records are read this many at a time, so the session keeps as many connections.
        self.read_workers = settings.concurrency
        self._client = client or hvac.Client(
            url=settings.vault_addr,
            verify=settings.vault_verify,
            timeout=settings.vault_timeout_seconds,
            namespace=settings.vault_namespace,
            session=self._session(settings),
        )
        # Threads that find the token expired at the same time log in once between them.
        self._login_lock = threading.Lock()
        self._logins = 0
        if not settings.vault_verify:
            log.warning("TLS verification is off for Vault at %s", self.addr)
        self._login()

    def _session(self, settings: Settings) -> requests.Session:
        # hvac takes TLS verification and proxies from a session it is given, so the
        # session carries RPA_VAULT_VERIFY and the environment's settings.
        session = requests.Session()
        settle_environment(session, self.addr, settings.vault_verify)
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(10, self.read_workers))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def list_names(self, folder: str) -> list[str]:
        """Return the secret names directly under `folder`; an empty or absent folder gives []."""
        try:
            reply = self._call(
                f"list {self.mount}/{folder}/",
                lambda: self._client.secrets.kv.v2.list_secrets(path=folder,
                                                                 mount_point=self.mount),
            )
        except errors.NotFound:
            return []
        keys = (reply or {}).get("data", {}).get("keys", [])
        return sorted(key for key in keys if isinstance(key, str) and not key.endswith("/"))

    def read(self, path: str) -> Secret:
        """Read the latest version; raises DeletedVersion when it is soft-deleted."""
        where = f"read {self.mount}/{path}"
        reply = self._call(
            where,
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=False
            ),
        )
        body = (reply or {}).get("data") or {}
        metadata = body.get("metadata") or {}
        if body.get("data") is None:
            raise DeletedVersion(f"Vault {where}: latest version {metadata.get('version')} is "
                                 "deleted", service=SERVICE)
        if not isinstance(body["data"], dict) or not isinstance(metadata.get("version"), int):
            raise errors.InvalidResponse(f"Vault {where}: reply of unexpected shape",
                                         service=SERVICE)
        return Secret(path, dict(body["data"]), metadata["version"])

    def write(self, path: str, data: dict[str, Any], *, cas: int) -> int:
        """Write a whole secret if its current version is `cas` (0: only if it does not exist).

        Returns the new version; raises Conflict when another writer got there first.
        """
        where = f"write {self.mount}/{path}"
        try:
            reply = self._call(where, lambda: self._client.secrets.kv.v2.create_or_update_secret(
                path=path, secret=data, cas=cas, mount_point=self.mount))
        except errors.InvalidRequest as err:
            if "check-and-set" in str(err):
                raise errors.Conflict(f"Vault {where}: version {cas} is no longer the latest",
                                      service=SERVICE, status=400) from err
            raise
        log.info("wrote Vault %s/%s fields %s", self.mount, path, sorted(data))
        return int(((reply or {}).get("data") or {}).get("version", cas + 1))

    def update(self, path: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Secret:
        """Apply `change` to the latest fields with check-and-set, re-reading on a conflict.

        `change` receives a copy of the current fields and returns the fields to write, so a
        concurrent edit of another field is kept, never overwritten.
        """
        for _ in range(CAS_ATTEMPTS):
            current = self.read(path)
            wanted = change(dict(current.data))
            if wanted == current.data:
                return current
            try:
                version = self.write(path, wanted, cas=current.version)
            except errors.Conflict:
                log.warning("Vault %s/%s changed while writing; reading it again",
                            self.mount, path)
                continue
            return Secret(path, wanted, version)
        raise errors.Conflict(f"Vault write {self.mount}/{path} lost {CAS_ATTEMPTS} "
                              "check-and-set races in a row", service=SERVICE)

    def _login(self) -> None:
        settings = self._settings
        try:
            if settings.vault_auth == "token":
                assert settings.vault_token is not None
                self._client.token = settings.vault_token.get_secret_value()
            elif settings.vault_auth == "approle":
                assert settings.vault_role_id and settings.vault_secret_id
                self._client.auth.approle.login(
                    role_id=settings.vault_role_id,
                    secret_id=settings.vault_secret_id.get_secret_value(),
                )
            else:
                self._login_kubernetes()
        except (hvac.exceptions.VaultError, requests.RequestException) as err:
            raise _translate(f"login with {settings.vault_auth} auth at {self.addr}", err,
                             addr=self.addr) from err

    def _login_kubernetes(self) -> None:
        # hvac's kubernetes login takes the service-account token itself, not the file.
        settings = self._settings
        path = settings.vault_k8s_token_path
        try:
            jwt = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise errors.Unauthorized(
                f"Vault kubernetes login: cannot read the service-account token {path}: "
                f"{err.strerror}", service=SERVICE) from err
        assert settings.vault_k8s_role is not None
        self._client.auth.kubernetes.login(role=settings.vault_k8s_role, jwt=jwt,
                                           mount_point=settings.vault_k8s_mount)

    def _call(self, where: str, call: Callable[[], T]) -> T:
        relogged = False
        while True:
            logins = self._logins
            try:
                return call()
            except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as err:
                # Vault returns 403 for an expired token. A login method can get a new one, once.
                if relogged or self._settings.vault_auth == "token":
                    raise _translate(where, err, addr=self.addr) from err
                with self._login_lock:
                    # Another thread may have logged in since this call was sent.
                    if self._logins == logins:
                        log.warning("Vault returned %s to %s; logging in again",
                                    type(err).__name__, where)
                        self._login()
                        self._logins += 1
                relogged = True
            except (hvac.exceptions.VaultError, requests.RequestException) as err:
                raise _translate(where, err, addr=self.addr) from err


_HVAC_ERRORS: list[tuple[type[Exception], type[errors.ClientError], int | None]] = [
    (hvac.exceptions.InvalidPath, errors.NotFound, 404),
    (hvac.exceptions.Forbidden, errors.Forbidden, 403),
    (hvac.exceptions.Unauthorized, errors.Unauthorized, 401),
    (hvac.exceptions.InvalidRequest, errors.InvalidRequest, 400),
    (hvac.exceptions.RateLimitExceeded, errors.Throttled, 429),
    (hvac.exceptions.VaultDown, errors.Unavailable, 503),
    (hvac.exceptions.InternalServerError, errors.Unavailable, 500),
    (hvac.exceptions.BadGateway, errors.Unavailable, 502),
]


def _translate(where: str, err: Exception, *, addr: str) -> errors.ClientError:
    """Map an hvac or requests error to ours; hvac messages name paths, never values."""
    if isinstance(err, requests.RequestException):
        # The address is what an operator checks first when Vault cannot be reached.
        at = "" if addr in where else f" at {addr}"
        return errors.Unavailable(
            f"Vault {where}: cannot reach Vault{at} ({type(err).__name__})", service=SERVICE)
    for hvac_class, ours, status in _HVAC_ERRORS:
        if isinstance(err, hvac_class):
            detail = "sealed" if isinstance(err, hvac.exceptions.VaultDown) else _first_line(err)
            return ours(f"Vault {where} failed: {detail}", service=SERVICE, status=status)
    return errors.ClientError(f"Vault {where} failed: {type(err).__name__}", service=SERVICE)


def _first_line(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
