"""A read-only stand-in for Vault's KV v2 API on 127.0.0.1, for benchmarks and local runs.

It serves the account records of an inventory as a Vault mount stores them: a LIST of
`<mount>/metadata/<folder>` names the accounts of a folder, and a GET of
`<mount>/data/<folder>/<account>` returns one record as version 1. It checks the
`X-Vault-Token` header, counts the calls by kind, and replies to each request no sooner than
`latency_seconds` after it arrived, as the other stand-ins do. Any other request gets 403,
as Vault rejects a request that the token's policy does not allow. The jobs that the
benchmark runs only read their records.
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from rpa.inventory import FOLDERS, RawRecords
from rpa.sandbox.platform import wait_until


class VaultStandIn:
    """KV v2 reads of `records` under `mount`, with a token check, latency and call counts."""

    def __init__(self, records: RawRecords, *, token: str, mount: str = "trial",
                 latency_seconds: float = 0.0) -> None:
        if latency_seconds < 0:
            raise ValueError(f"latency_seconds must be >= 0, got {latency_seconds}")
        self._records = {folder: dict(records.get(folder, {})) for folder in FOLDERS}
        self._token = token
        self._mount = mount
        self.latency_seconds = latency_seconds
        self._lock = threading.Lock()
        self._calls: collections.Counter[str] = collections.Counter()
        self._server: ThreadingHTTPServer | None = None

    def load(self, records: RawRecords) -> None:
        """Replace the records that the stand-in serves."""
        with self._lock:
            self._records = {folder: dict(records.get(folder, {})) for folder in FOLDERS}

    @property
    def calls(self) -> collections.Counter[str]:
        """Copy of the request count per kind: `list`, `read` and `rejected`."""
        with self._lock:
            return collections.Counter(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def start(self) -> str:
        """Bind a free port on 127.0.0.1, serve from a daemon thread and return the address."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in two writes. With Nagle's algorithm on, the
            # body waits for the client's delayed acknowledgement (44 ms per read, measured).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._reply("GET")

            def do_LIST(self) -> None:
                self._reply("LIST")

            def do_POST(self) -> None:
                self._reply("POST")

            def _reply(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, body = stand_in.respond(method, self.path,
                                                self.headers.get("X-Vault-Token"))
                payload = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="vault-stand-in",
                         daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, method: str, target: str, token: str | None) -> tuple[int, Any]:
        """Return the status and JSON body of one request; `target` is the path and query."""
        arrived = time.monotonic()
        status, body, kind = self._handle(method, target, token)
        with self._lock:
            self._calls[kind] += 1
        wait_until(arrived + self.latency_seconds)
        return status, body

    def _handle(self, method: str, target: str, token: str | None) -> tuple[int, Any, str]:
        if token is None or not secrets.compare_digest(token.encode(), self._token.encode()):
            return 403, {"errors": ["permission denied"]}, "rejected"
        split = urlsplit(target)
        parts = [unquote(part) for part in split.path.split("/") if part]
        listing = method == "LIST" or (method == "GET" and "list=true" in split.query)
        if len(parts) == 4 and parts[:3] == ["v1", self._mount, "metadata"] and listing:
            names = sorted(self._records.get(parts[3], {}))
            if not names:
                return 404, {"errors": []}, "list"
            return 200, {"data": {"keys": names}}, "list"
        if len(parts) == 5 and parts[:3] == ["v1", self._mount, "data"] and method == "GET":
            record = self._records.get(parts[3], {}).get(parts[4])
            if record is None:
                return 404, {"errors": []}, "read"
            metadata = {"version": 1, "deletion_time": "", "destroyed": False,
                        "created_time": "2026-01-05T00:00:00Z"}
            return 200, {"data": {"data": record, "metadata": metadata}}, "read"
        # Vault returns the same 403 to a token whose policy allows only these reads.
        return 403, {"errors": ["permission denied"]}, "rejected"

