"""moto's AWS server for the sandbox, with an injected latency and a count of the calls served.

The platform stand-in replies to each request no sooner than `latency_seconds` after it
arrived and counts every request. This server does the same for AWS. A benchmark can then
model the network round trips to both, and count a job's calls by service, operation, and
read or write. It serves moto's own WSGI application on 127.0.0.1 from a thread, as moto's
`ThreadedMotoServer` does, with one thread per request, so the waits of concurrent requests
overlap.

The operation of a request is read from what botocore sends: the `X-Amz-Target` header
(JSON protocol: EMR), the form field `Action` (query protocol: Auto Scaling, IAM, STS), or
for S3 the method, the path and the subresource in the query string.
"""

from __future__ import annotations

import collections
import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from rpa.sandbox.platform import wait_until

# The service in a SigV4 Authorization header: Credential=<key>/<date>/<region>/<service>/...
_CREDENTIAL_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
READ_PREFIXES = ("Describe", "List", "Get", "Head")
# S3 bucket subresources the jobs use, by their query key.
S3_SUBRESOURCES = {
    "tagging": "BucketTagging", "publicAccessBlock": "PublicAccessBlock",
    "encryption": "BucketEncryption", "versioning": "BucketVersioning",
    "versions": "ObjectVersions", "uploads": "MultipartUploads", "delete": "Objects",
    "location": "BucketLocation", "lifecycle": "BucketLifecycleConfiguration",
}
S3_VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "POST": "Post", "HEAD": "Head"}

StartResponse = Callable[..., Any]


class AwsCall(NamedTuple):
    """One AWS request as the server saw it: service, operation, and whether it only reads."""

    service: str
    operation: str
    read: bool


class _QuietHandler(WSGIRequestHandler):
    """Leaves out werkzeug's line per request, which would flood a benchmark's output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class MotoServer:
    """moto's server on 127.0.0.1: replies `latency_seconds` after each request, and a count."""

    def __init__(self, *, latency_seconds: float = 0.0) -> None:
        if latency_seconds < 0:
            raise ValueError(f"latency_seconds must be >= 0, got {latency_seconds}")
        self.latency_seconds = latency_seconds
        self._lock = threading.Lock()
        self._calls: collections.Counter[AwsCall] = collections.Counter()
        self._requests: collections.Counter[tuple[AwsCall, str]] = collections.Counter()
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind a free port on 127.0.0.1, serve from a daemon thread and return the base URL."""
        self._server = make_server("127.0.0.1", 0, self._serve, threaded=True,
                                   request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server",
                                        daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    @property
    def calls(self) -> collections.Counter[AwsCall]:
        """Copy of the request count per (service, operation, read)."""
        with self._lock:
            return collections.Counter(self._calls)

    def repeated_reads(self) -> int:
        """Count read requests sent again with the same method, path, query and body."""
        with self._lock:
            return sum(count - 1 for (call, _), count in self._requests.items() if call.read)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._requests.clear()

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        arrived = time.monotonic()
        body = _take_body(environ)
        call = identify_call(environ, body)
        request = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}?" \
                  f"{environ.get('QUERY_STRING', '')} {body!r}"
        with self._lock:
            self._calls[call] += 1
            self._requests[(call, request)] += 1
        # moto builds the whole reply here; the server sends it once this returns.
        result: Iterable[bytes] = self._app(environ, start_response)
        wait_until(arrived + self.latency_seconds)
        return result


def _take_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so moto reads it as if untouched."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def identify_call(environ: dict[str, Any], body: bytes) -> AwsCall:
    """Name the service and operation of a botocore request, and tell whether it only reads."""
    match = _CREDENTIAL_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "unknown"
    method = environ["REQUEST_METHOD"]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation = target.rpartition(".")[2]
    elif service == "s3":
        return _identify_s3(method, environ.get("PATH_INFO", "/"),
                            environ.get("QUERY_STRING", ""))
    else:
        fields = parse_qs(body.decode("utf-8", "replace")) if body else {}
        operation = (fields.get("Action") or parse_qs(environ.get("QUERY_STRING", "")).get(
            "Action") or [f"{method} {environ.get('PATH_INFO', '')}"])[0]
    return AwsCall(service, operation, operation.startswith(READ_PREFIXES))


def _identify_s3(method: str, path: str, query: str) -> AwsCall:
    parts = [part for part in path.split("/") if part]
    keys = [item.partition("=")[0] for item in query.split("&") if item]
    subresource = next((S3_SUBRESOURCES[key] for key in keys if key in S3_SUBRESOURCES), None)
    verb = S3_VERBS.get(method, method.title())
    if not parts:
        operation = "ListBuckets"
    elif len(parts) > 1:
        operation = f"{verb}Object"
    elif subresource is not None:
        operation = f"{verb}{subresource}"
    else:
        operation = {"PUT": "CreateBucket", "DELETE": "DeleteBucket",
                     "GET": "ListObjects"}.get(method, f"{verb}Bucket")
    return AwsCall("s3", operation, method in ("GET", "HEAD"))
