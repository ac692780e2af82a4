"""Local stand-in for the Slack Web API method chat.postMessage, for the sandbox and the tests.

slack_sdk sends with urllib, which `responses` cannot intercept, so the tests and
`rpa noti --sandbox` talk to this server over HTTP on 127.0.0.1 instead. It makes the
checks that Slack makes on our messages. The bearer token gives `invalid_auth` or
`not_authed`, the bot's scopes `missing_scope` with `needed` and `provided`, the channel
`channel_not_found`, and the bot's membership `not_in_channel`. The Block Kit limits give
`invalid_blocks` for more than 50 blocks, a section text over 3,000 characters or a header
over 150, and `msg_blocks_too_long` for too much text in all. Accepted messages are
recorded with their `ts`, and `rate_limit_next` makes it answer HTTP 429 with Retry-After.

    with SlackStandIn(token="xoxb-test", channels=[Channel("C0TEST0001", "general")]) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from rpa.blocks import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_FIELDS,
    MAX_HEADER_CHARS,
    MAX_SECTION_CHARS,
    block_chars,
)

log = logging.getLogger(__name__)

POST_MESSAGE = "/api/chat.postMessage"
WRITE_SCOPE = "chat:write"
# Slack cuts a message's `text` beyond this many characters. The stand-in rejects it instead,
# so that the overflow fails a test.
MAX_TEXT_CHARS = 40_000
# Slack rejects a message whose blocks hold too much text in all (msg_blocks_too_long). The
# limit is not documented; users of the API report it near 12,000 characters.
MAX_BLOCKS_TEXT_CHARS = 12_000
SHUTDOWN_POLL_SECONDS = 0.05
# Seconds of the first `ts`; later ones count up in microseconds, as Slack's are unique.
FIRST_TS_SECONDS = 1_796_000_000


@dataclass(frozen=True)
class Channel:
    """A channel of the workspace; `is_member` is True when the bot was invited."""

    id: str
    name: str
    is_member: bool = True


@dataclass(frozen=True)
class PostedMessage:
    """One accepted chat.postMessage, as the stand-in stored it."""

    channel: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    ts: str


class SlackError(Exception):
    """A reply of `{"ok": false, "error": code}` with extra fields and an HTTP status."""

    def __init__(self, code: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
                 **fields: Any) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.headers = dict(headers or {})
        self.fields = fields


@dataclass
class _State:
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: list[PostedMessage] = field(default_factory=list)
    request_count: int = 0
    rate_limits: int = 0
    retry_after_seconds: int = 0
    next_micros: int = 0


class SlackStandIn:
    """chat.postMessage on 127.0.0.1, with its state readable by tests."""

    def __init__(self, *, token: str, channels: Iterable[Channel] = (),
                 scopes: Iterable[str] = (WRITE_SCOPE,)) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        self.token = token
        self.scopes = tuple(scopes)
        self._lock = threading.Lock()
        self._state = _State(channels={channel.id: channel for channel in channels})
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind 127.0.0.1 on a free port, serve from a daemon thread, return the base URL."""
        if self._server is not None:
            raise RuntimeError("the Slack stand-in is already running")
        self._server = _Server(("127.0.0.1", 0), self)
        # A short poll interval lets stop() return quickly; shutdown waits for the next poll.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                                        name="slack-stand-in", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SlackStandIn:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The Web API base URL to give slack_sdk, ending in `/api/`."""
        if self._server is None:
            raise RuntimeError("the Slack stand-in is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    @property
    def messages(self) -> list[PostedMessage]:
        with self._lock:
            return list(self._state.messages)

    @property
    def request_count(self) -> int:
        """Requests to chat.postMessage so far, rejected and rate-limited ones included."""
        with self._lock:
            return self._state.request_count

    def add_channel(self, channel: Channel) -> None:
        with self._lock:
            self._state.channels[channel.id] = channel

    def rate_limit_next(self, times: int, *, retry_after_seconds: int = 0) -> None:
        """Reply to the next `times` requests with HTTP 429 and `Retry-After`."""
        if times < 1 or retry_after_seconds < 0:
            raise ValueError("times must be >= 1 and retry_after_seconds >= 0")
        with self._lock:
            self._state.rate_limits += times
            self._state.retry_after_seconds = retry_after_seconds

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Handle one request (header names in lower case); raises SlackError on failure."""
        if path.split("?", 1)[0] != POST_MESSAGE:
            raise SlackError("unknown_method", status=404)
        with self._lock:
            self._state.request_count += 1
            if self._state.rate_limits:
                self._state.rate_limits -= 1
                raise SlackError("ratelimited", status=429, headers={
                    "Retry-After": str(self._state.retry_after_seconds)})
            params = _parse_body(headers.get("content-type", ""), body)
            self._check_token(headers.get("authorization"), params.get("token"))
            channel = self._find_channel(params.get("channel"))
            message = self._accept(channel, params)
            self._state.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message.ts,
                "message": {"text": message.text, "blocks": message.blocks, "ts": message.ts}}

    def _check_token(self, authorization: str | None, form_token: Any) -> None:
        token = form_token if isinstance(form_token, str) else None
        if authorization and authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ")
        if not token:
            raise SlackError("not_authed")
        if token != self.token:
            raise SlackError("invalid_auth")
        if WRITE_SCOPE not in self.scopes:
            raise SlackError("missing_scope", needed=WRITE_SCOPE, provided=",".join(self.scopes))

    def _find_channel(self, wanted: Any) -> Channel:
        if not isinstance(wanted, str) or not wanted:
            raise SlackError("channel_not_found")
        name = wanted.removeprefix("#")
        for channel in self._state.channels.values():
            if wanted == channel.id or name == channel.name:
                if not channel.is_member:
                    raise SlackError("not_in_channel")
                return channel
        raise SlackError("channel_not_found")

    def _accept(self, channel: Channel, params: Mapping[str, Any]) -> PostedMessage:
        text = params.get("text") or ""
        blocks = params.get("blocks") or []
        if not isinstance(text, str) or not isinstance(blocks, list):
            raise SlackError("invalid_arguments")
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise SlackError("msg_too_long")
        problems = check_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", errors=problems)
        if sum(block_chars(block) for block in blocks) > MAX_BLOCKS_TEXT_CHARS:
            raise SlackError("msg_blocks_too_long")
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None and not any(
                m.ts == thread_ts and m.channel == channel.id for m in self._state.messages):
            raise SlackError("thread_not_found")
        self._state.next_micros += 100
        ts = f"{FIRST_TS_SECONDS}.{self._state.next_micros:06d}"
        return PostedMessage(channel.id, text, blocks, thread_ts, ts)


def check_blocks(blocks: list[Any]) -> list[str]:
    """Return Slack-style schema errors for the limits that our messages can reach."""
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"must be at most {MAX_BLOCKS} items [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{index}"
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"must be an object with a type {where}]")
            continue
        limit = MAX_HEADER_CHARS if block["type"] == "header" else MAX_SECTION_CHARS
        text = block.get("text")
        if isinstance(text, dict) and not 0 < len(str(text.get("text", ""))) <= limit:
            problems.append(f"must be 1 to {limit} characters {where}/text/text]")
        items = block.get("fields", [])
        if len(items) > MAX_FIELDS:
            problems.append(f"must be at most {MAX_FIELDS} items {where}/fields]")
        for number, item in enumerate(items):
            if len(str(item.get("text", ""))) > MAX_FIELD_CHARS:
                problems.append(f"must be at most {MAX_FIELD_CHARS} characters "
                                f"{where}/fields/{number}/text]")
    return problems


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Read a JSON or form body; in a form, `blocks` is a JSON string as Slack expects."""
    try:
        if content_type.startswith("application/json"):
            value = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(value, dict):
                raise SlackError("invalid_json")
            return value
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8")).items()}
        parsed: dict[str, Any] = dict(form)
        if "blocks" in form:
            parsed["blocks"] = json.loads(form["blocks"])
        return parsed
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SlackError("invalid_json") from None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], stand_in: SlackStandIn) -> None:
        self.stand_in = stand_in
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            reply = self.server.stand_in.handle(self.path, headers, body)
            self._send(200, reply, {})
        except SlackError as error:
            self._send(error.status, {"ok": False, "error": error.code, **error.fields},
                       error.headers)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
