"""Bearer tokens from the platform's SSO (OAuth 2.0 client credentials) for Pipeline and portal.

The token is kept until shortly before it expires and fetched again after a 401, so a run
longer than the token's life goes on.
"""

from __future__ import annotations

import logging
import threading
import time

import requests

from rpa.clients import errors

log = logging.getLogger(__name__)
SERVICE = "sso"
# A token is renewed this long before the expiry the SSO gave, so no call carries one that
# expires on the way.
EXPIRY_MARGIN_SECONDS = 60.0


class SsoTokens:
    """A renewable `rpa.clients.http.TokenSource` backed by the SSO token endpoint."""

    renewable = True

    def __init__(self, url: str, *, client_id: str, client_secret: str, timeout_seconds: float,
                 verify: bool = True) -> None:
        self._url = url.rstrip("/") + "/oauth2/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout_seconds = timeout_seconds
        self._verify = verify
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        with self._lock:
            if self._value is None or time.monotonic() >= self._expires_at:
                self._value, lifetime = self._fetch()
                self._expires_at = time.monotonic() + max(0.0, lifetime - EXPIRY_MARGIN_SECONDS)
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None

    def _fetch(self) -> tuple[str, float]:
        where = f"SSO POST {self._url}"
        try:
            reply = requests.post(
                self._url,
                data={"grant_type": "client_credentials", "client_id": self._client_id,
                      "client_secret": self._client_secret},
                timeout=self._timeout_seconds, verify=self._verify,
            )
        except requests.RequestException as err:
            raise errors.Unavailable(f"{where} failed: {type(err).__name__}",
                                     service=SERVICE) from err
        if reply.status_code in (400, 401):
            raise errors.Unauthorized(f"{where} rejected the client credentials (HTTP "
                                      f"{reply.status_code}); check RPA_SSO_CLIENT_ID and "
                                      "RPA_SSO_CLIENT_SECRET", service=SERVICE,
                                      status=reply.status_code)
        if reply.status_code >= 400:
            raise errors.Unavailable(f"{where} failed with HTTP {reply.status_code}",
                                     service=SERVICE, status=reply.status_code)
        try:
            body = reply.json()
            value, lifetime = body["access_token"], float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as err:
            raise errors.InvalidResponse(f"{where} returned no access_token",
                                         service=SERVICE) from err
        if not isinstance(value, str) or not value:
            raise errors.InvalidResponse(f"{where} returned an empty access_token",
                                         service=SERVICE)
        log.info("obtained an SSO token valid for %.0f s", lifetime)
        return value, lifetime
