"""The HTTP layer shared by the platform REST clients (Modeler, Pipeline, MCM, CloudZ).

One `JsonApi` per base URL keeps two `requests.Session`s: one retries with urllib3's `Retry`
and serves idempotent calls, the other never retries and serves creates, so a lost reply
never makes a resource twice. A `JsonApi` may also cap the calls in flight to its base URL
(`max_in_flight`), so that the workers of a run never send one site more than that at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rpa.clients import errors

log = logging.getLogger(__name__)

STATUS_ERRORS: Mapping[int, type[errors.ClientError]] = {
    400: errors.InvalidRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.InvalidRequest,
    429: errors.Throttled,
}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# The largest page the platform contract allows, so a listing takes as few calls as it can.
MAX_PER_PAGE = 500

# An error body is kept in messages only as its `error.message` field, cut to this length,
# because bodies of unknown shape may echo request data.
ERROR_MESSAGE_MAX_CHARS = 200


def settle_environment(session: requests.Session, base_url: str, verify: bool) -> None:
    """Set the proxies and CA bundle that the environment gives `base_url`, once.

    These are HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE. With `trust_env` on, requests
    would read them again on every call and scan the whole environment each time. In a pod
    with many variables, that costs more CPU than the rest of the call.
    """
    found = session.merge_environment_settings(base_url, {}, None, verify, None)
    session.trust_env = False
    session.proxies = found["proxies"]
    session.verify = found["verify"]


def make_session(base_url: str, *, retries: int, backoff_seconds: float,
                 verify: bool) -> requests.Session:
    """Build a session for `base_url`; `retries=0` gives one that never retries."""
    session = requests.Session()
    settle_environment(session, base_url, verify)
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_seconds,
        status_forcelist=RETRY_STATUSES,
        # Every method is allowed here because only idempotent calls use this session.
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class TokenSource(Protocol):
    """Source of a client's bearer token; a renewable source is asked again after a 401."""

    renewable: bool

    def token(self) -> str: ...

    def invalidate(self) -> None: ...


class StaticToken:
    renewable = False

    def __init__(self, value: str) -> None:
        self._value = value

    def token(self) -> str:
        return self._value

    def invalidate(self) -> None:
        pass


class JsonApi:
    """JSON calls against one base URL with a bearer token."""

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        token: str | TokenSource | None,
        timeout_seconds: float,
        retries: int,
        backoff_seconds: float,
        verify: bool = True,
        max_in_flight: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Held for the whole call, retries and their backoff included, so a site that responds
        # slowly or with errors gets no more calls at once than the limit.
        self._in_flight: contextlib.AbstractContextManager[Any] = (
            threading.BoundedSemaphore(max_in_flight) if max_in_flight
            else contextlib.nullcontext())
        self.service = service
        self._timeout_seconds = timeout_seconds
        # Without a token no Authorization header is sent (CloudZ sessions carry their own).
        self._tokens = StaticToken(token or "") if token is None or isinstance(token, str) \
            else token
        self._retrying = make_session(self.base_url, retries=retries,
                                      backoff_seconds=backoff_seconds, verify=verify)
        self._single = make_session(self.base_url, retries=0, backoff_seconds=0, verify=verify)
        if not verify:
            log.warning("TLS verification is off for %s at %s", service, self.base_url)

    def close(self) -> None:
        self._retrying.close()
        self._single.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one call and return its decoded JSON body, or None for an empty reply.

        Raises a `rpa.clients.errors.ClientError` subclass for every failure.
        """
        where = f"{self.service} {method} {path}"
        reply = self._send(method, path, idempotent=idempotent, params=params, body=body,
                           headers=headers)
        if reply.status_code == 401 and self._tokens.renewable:
            # A 401 means the call was not carried out, so even a create may be sent again.
            log.info("%s returned 401; renewing the token and trying once more", where)
            self._tokens.invalidate()
            reply = self._send(method, path, idempotent=idempotent, params=params, body=body,
                               headers=headers)
        log.debug("%s -> %s", where, reply.status_code)
        if reply.status_code >= 400:
            raise self._status_error(where, reply)
        if not reply.content:
            return None
        try:
            return reply.json()
        except ValueError as err:
            raise errors.InvalidResponse(
                f"{where} returned a body that is not JSON", service=self.service,
                status=reply.status_code,
            ) from err

    def _send(self, method: str, path: str, *, idempotent: bool,
              params: Mapping[str, Any] | None, body: Any,
              headers: Mapping[str, str] | None) -> requests.Response:
        session = self._retrying if idempotent else self._single
        where = f"{self.service} {method} {path}"
        sent = {"Accept": "application/json"}
        token = self._tokens.token()
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        try:
            with self._in_flight:
                return session.request(
                    method,
                    f"{self.base_url}{path}",
                    params=params,
                    json=body,
                    headers=sent,
                    timeout=self._timeout_seconds,
                )
        except requests.RequestException as err:
            if _is_timeout(err):
                raise errors.Unavailable(f"{where} timed out{_unknown_outcome(err, idempotent)}",
                                         service=self.service) from err
            # RetryError and ConnectionError land here once the retries are spent.
            raise errors.Unavailable(
                f"{where} failed: {type(err).__name__}", service=self.service
            ) from err

    def list_all(self, path: str, *, params: Mapping[str, Any] | None = None,
                 per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Yield every item of a paged listing, one call per page."""
        page = 1
        while True:
            reply = self.request(
                "GET", path, idempotent=True, params={**(params or {}), "page": page,
                                                      "per_page": per_page},
            )
            items, total = _page_items(reply, where=f"{self.service} GET {path}",
                                       service=self.service)
            yield from items
            if page * per_page >= total or not items:
                return
            page += 1

    def _status_error(self, where: str, reply: requests.Response) -> errors.ClientError:
        status = reply.status_code
        cls = STATUS_ERRORS.get(status, errors.Unavailable if status >= 500 else errors.ClientError)
        reason = _error_message(reply, token=self._tokens.token())
        message = f"{where} failed with HTTP {status}" + (f": {reason}" if reason else "")
        return cls(message, service=self.service, status=status)


def _is_timeout(err: requests.RequestException) -> bool:
    """True for a timeout, also when urllib3 wrapped it in a ConnectionError after retries."""
    if isinstance(err, requests.Timeout):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, urllib3.exceptions.TimeoutError)


def _unknown_outcome(err: requests.RequestException, idempotent: bool) -> str:
    if idempotent or isinstance(err, requests.ConnectTimeout):
        return ""
    # The server may have carried out a request whose reply never came.
    return " (the request may still have been carried out; the next run plans from what exists)"


def _page_items(reply: Any, *, where: str, service: str) -> tuple[list[dict[str, Any]], int]:
    if (
        not isinstance(reply, dict)
        or not isinstance(reply.get("items"), list)
        or not isinstance(reply.get("total"), int)
        or not all(isinstance(item, dict) for item in reply["items"])
    ):
        raise errors.InvalidResponse(f"{where} returned a listing of unexpected shape",
                                     service=service)
    return reply["items"], reply["total"]


def _error_message(reply: requests.Response, *, token: str) -> str:
    try:
        body = reply.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if isinstance(message, str):
            # A server that echoes request headers would otherwise put the token in the
            # message. Masking it before the cut leaves no part of it either.
            if token:
                message = message.replace(token, "***")
            return message[:ERROR_MESSAGE_MAX_CHARS]
    return ""


def require_fields(item: Any, fields: Mapping[str, type], *, where: str,
                   service: str) -> dict[str, Any]:
    """Check that a reply object has the fields with the types the contract gives."""
    if not isinstance(item, dict):
        raise errors.InvalidResponse(f"{where} returned {type(item).__name__}, not an object",
                                     service=service)
    for name, kind in fields.items():
        if not isinstance(item.get(name), kind):
            # The value is left out because replies may carry secrets (session tokens).
            raise errors.InvalidResponse(
                f"{where} returned an object without a valid {name!r}", service=service
            )
    return item
