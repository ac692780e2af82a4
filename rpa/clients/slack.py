"""Slack Web API through slack_sdk's `WebClient`: posting messages, and Slack's errors as ours.

The daily report (`rpa.noti`) and the failure alerts of the other jobs (`rpa.alerts`) post
with `SlackClient`. Every failure becomes a `rpa.clients.errors.ClientError` subclass in
`translate_error`, with a message that gives an operator the next step: which channel or
setting to fix, which scope the token lacks. The token never appears in a message or a log
line: messages carry only Slack's error code and the documented fields `needed`, `provided`
and `errors` of the reply.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from rpa.blocks import Message
from rpa.clients import errors
from rpa.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "slack"
METHOD = "chat.postMessage"
TOKEN_SETTING = "RPA_SLACK_TOKEN"
# Codes that mean the token itself is unusable.
TOKEN_CODES = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired",
                         "account_inactive"})
# Slack error codes by the exception they become; codes not listed become a plain ClientError.
ERROR_CODES: Mapping[str, type[errors.ClientError]] = {
    **dict.fromkeys(TOKEN_CODES, errors.Unauthorized),
    "missing_scope": errors.Forbidden,
    "not_in_channel": errors.Forbidden,
    "is_archived": errors.Forbidden,
    "restricted_action": errors.Forbidden,
    "channel_not_found": errors.NotFound,
    "ratelimited": errors.Throttled,
    "rate_limited": errors.Throttled,
    "msg_blocks_too_long": errors.InvalidRequest,
    "invalid_blocks": errors.InvalidRequest,
    "invalid_blocks_format": errors.InvalidRequest,
    "invalid_arguments": errors.InvalidRequest,
    "msg_too_long": errors.InvalidRequest,
    "no_text": errors.InvalidRequest,
    "internal_error": errors.Unavailable,
    "fatal_error": errors.Unavailable,
    "service_unavailable": errors.Unavailable,
    "request_timeout": errors.Unavailable,
}
# Slack's schema errors are cut to this length; they name block paths, never the token.
DETAIL_MAX_CHARS = 300


class SlackClient:
    """Posts messages with one bot token, retrying rate limits and connection errors."""

    def __init__(self, *, token: str, base_url: str, timeout_seconds: float,
                 rate_limit_retries: int, connection_retries: int) -> None:
        self.base_url = base_url
        self.rate_limit_retries = rate_limit_retries
        self.connection_retries = connection_retries
        # Rate limits are retried after Retry-After, and only 429 replies: a 5xx may come
        # after Slack has posted the message, and chat.postMessage is not idempotent.
        # NOTE: a connection reset after the request was sent is retried as well, so in that
        # rare case a message can appear twice.
        # NOTE: each retry after a 429 sleeps the whole Retry-After that Slack sends; no cap.
        handlers = [RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
                    ConnectionErrorRetryHandler(max_retry_count=connection_retries)]
        self._client = WebClient(token=token, base_url=base_url,
                                 timeout=math.ceil(timeout_seconds), retry_handlers=handlers)

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackClient:
        """Build the client; the caller checks first that RPA_SLACK_TOKEN is set."""
        if settings.slack_token is None:
            raise ValueError(f"{TOKEN_SETTING} is not set")
        return cls(token=settings.slack_token.get_secret_value(),
                   base_url=settings.slack_base_url,
                   timeout_seconds=settings.http_timeout_seconds,
                   rate_limit_retries=settings.slack_rate_limit_retries,
                   connection_retries=settings.slack_connection_retries)

    def post_message(self, channel: str, *, text: str, blocks: Sequence[dict[str, Any]],
                     thread_ts: str | None = None, channel_setting: str) -> str:
        """Post one message and return its `ts`; with `thread_ts` it is a reply in that thread.

        `channel_setting` names the setting that gave `channel`, for the error message.
        Raises a `rpa.clients.errors.ClientError` subclass for every failure.
        """
        try:
            reply = self._client.chat_postMessage(
                channel=channel, text=text, blocks=list(blocks), thread_ts=thread_ts,
                unfurl_links=False, unfurl_media=False)
        except SlackApiError as err:
            raise translate_error(err, channel=channel, channel_setting=channel_setting,
                                  rate_limit_retries=self.rate_limit_retries) from err
        except OSError as err:
            # A refused connection arrives as URLError; a reset or a timeout as another OSError.
            reason = err.reason if isinstance(err, URLError) else err
            raise errors.Unavailable(
                f"Slack {METHOD} failed: cannot reach {self.base_url} ({reason}) after "
                f"{self.connection_retries} retries", service=SERVICE) from err
        except SlackClientError as err:
            raise errors.ClientError(f"Slack {METHOD} failed: {type(err).__name__}",
                                     service=SERVICE) from err
        ts = reply.get("ts")
        if not isinstance(ts, str):
            raise errors.InvalidResponse(f"Slack {METHOD} returned ok without a ts",
                                         service=SERVICE, status=reply.status_code)
        log.debug("posted message %s to Slack channel %s", ts, channel)
        return ts

    def post_thread(self, channel: str, messages: Sequence[Message], *,
                    channel_setting: str) -> list[str]:
        """Post the first message, then the others as replies in its thread; return the ts."""
        posted: list[str] = []
        for message in messages:
            try:
                ts = self.post_message(channel, text=message.text, blocks=message.blocks,
                                       thread_ts=posted[0] if posted else None,
                                       channel_setting=channel_setting)
            except errors.ClientError:
                if posted:
                    log.error("posted %d of %d messages to Slack channel %s before the "
                              "failure", len(posted), len(messages), channel)
                raise
            posted.append(ts)
        return posted


def translate_error(err: SlackApiError, *, channel: str, channel_setting: str,
                    rate_limit_retries: int) -> errors.ClientError:
    """Map a failed Slack reply to our error class, with what to do next in the message."""
    body = err.response.data if isinstance(err.response.data, dict) else {}
    status = err.response.status_code
    code = str(body.get("error") or ("ratelimited" if status == 429 else f"HTTP {status}"))
    cls = ERROR_CODES.get(code) or (errors.Unavailable if status >= 500 else errors.ClientError)
    advice = _advice(code, body, channel=channel, channel_setting=channel_setting,
                     rate_limit_retries=rate_limit_retries)
    message = f"Slack {METHOD} failed: {code}" + (f": {advice}" if advice else "")
    return cls(message, service=SERVICE, status=status)


def _advice(code: str, body: Mapping[str, Any], *, channel: str, channel_setting: str,
            rate_limit_retries: int) -> str:
    if code == "channel_not_found":
        return (f"no channel {channel!r} is visible to the bot. Set {channel_setting} to the "
                "channel ID (C…, shown at the bottom of the channel's About tab) instead of "
                "its name, and for a private channel invite the bot first with "
                "/invite @<bot name>")
    if code == "not_in_channel":
        return (f"the bot is not a member of channel {channel!r} ({channel_setting}). "
                "Invite it there with /invite @<bot name>, or set "
                f"{channel_setting} to a channel the bot is in")
    if code in TOKEN_CODES:
        return (f"Slack rejected the token in {TOKEN_SETTING}. Set {TOKEN_SETTING} to the "
                "bot token (xoxb-…) under OAuth & Permissions of the Slack app")
    if code == "missing_scope":
        needed = _field(body, "needed") or "chat:write"
        provided = _field(body, "provided") or "none"
        return (f"the token in {TOKEN_SETTING} lacks the scope {needed} (it has {provided}). "
                f"Add {needed} under OAuth & Permissions > Bot Token Scopes, reinstall the "
                f"app, and put the token Slack then shows into {TOKEN_SETTING}")
    if code == "ratelimited":
        return (f"Slack still answered HTTP 429 after {rate_limit_retries} retries; the next "
                "run posts again")
    details = body.get("errors")
    if isinstance(details, list) and details:
        return "; ".join(str(item) for item in details)[:DETAIL_MAX_CHARS]
    return ""


def _field(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    return value[:DETAIL_MAX_CHARS] if isinstance(value, str) else ""
