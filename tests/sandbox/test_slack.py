"""Tests of the Slack stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rpa.sandbox.slack import Channel, SlackStandIn

TOKEN = "xoxb-stand-in-test"
MEMBER = Channel("C0MEMBER01", "general")
OUTSIDER = Channel("C0OUTSIDE1", "secret", is_member=False)
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "안녕 👋 R&amp;D"}}


@pytest.fixture
def stand_in() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN, channels=[MEMBER, OUTSIDER]) as server:
        yield server


def post(server: SlackStandIn, body: dict[str, Any], *, token: str | None = TOKEN
         ) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{server.base_url}chat.postMessage", json=body, headers=headers,
                         timeout=5)


def test_binds_loopback(stand_in: SlackStandIn) -> None:
    assert stand_in.base_url.startswith("http://127.0.0.1:")
    assert stand_in.base_url.endswith("/api/")


def test_json_post_recorded(stand_in: SlackStandIn) -> None:
    reply = post(stand_in, {"channel": MEMBER.id, "text": "보고 ✅", "blocks": [SECTION]})

    body = reply.json()
    assert reply.status_code == 200
    assert body["ok"] is True
    assert body["channel"] == MEMBER.id
    [message] = stand_in.messages
    assert message.channel == MEMBER.id
    assert message.text == "보고 ✅"
    assert message.blocks == [SECTION]
    assert message.thread_ts is None
    assert message.ts == body["ts"]


def test_form_post_with_blocks_string(stand_in: SlackStandIn) -> None:
    form = {"token": TOKEN, "channel": "#general", "text": "form",
            "blocks": json.dumps([SECTION], ensure_ascii=False)}
    reply = requests.post(f"{stand_in.base_url}chat.postMessage", data=form, timeout=5)

    assert reply.json()["ok"] is True
    assert stand_in.messages[0].channel == MEMBER.id
    assert stand_in.messages[0].blocks == [SECTION]


def test_thread_reply_and_unique_ts(stand_in: SlackStandIn) -> None:
    first = post(stand_in, {"channel": MEMBER.id, "text": "first"}).json()["ts"]
    second = post(stand_in, {"channel": MEMBER.id, "text": "second", "thread_ts": first})

    assert second.json()["ok"] is True
    assert second.json()["ts"] != first
    assert [m.thread_ts for m in stand_in.messages] == [None, first]


@pytest.mark.parametrize(("body", "token", "error"), [
    # a token other than the stand-in's
    ({"channel": MEMBER.id, "text": "x"}, "xoxb-wrong", "invalid_auth"),
    # no token at all
    ({"channel": MEMBER.id, "text": "x"}, None, "not_authed"),
    # a channel the workspace does not have
    ({"channel": "C0NOWHERE1", "text": "x"}, TOKEN, "channel_not_found"),
    # a channel the bot was not invited to
    ({"channel": OUTSIDER.id, "text": "x"}, TOKEN, "not_in_channel"),
    # neither text nor blocks
    ({"channel": MEMBER.id}, TOKEN, "no_text"),
    # a reply to a message that does not exist
    ({"channel": MEMBER.id, "text": "x", "thread_ts": "1.000001"}, TOKEN, "thread_not_found"),
])
def test_rejections(stand_in: SlackStandIn, body: dict[str, Any], token: str | None,
                    error: str) -> None:
    reply = post(stand_in, body, token=token)

    assert reply.status_code == 200
    assert reply.json() == {"ok": False, "error": error}
    assert stand_in.messages == []


def test_missing_scope_names_it() -> None:
    with SlackStandIn(token=TOKEN, channels=[MEMBER], scopes=["channels:read"]) as server:
        body = post(server, {"channel": MEMBER.id, "text": "x"}).json()

    assert body["error"] == "missing_scope"
    assert body["needed"] == "chat:write"
    assert body["provided"] == "channels:read"


@pytest.mark.parametrize(("blocks", "pointer"), [
    # 51 blocks, one more than Slack allows
    ([SECTION] * 51, "[json-pointer:/blocks]"),
    # a section text of 3,001 characters
    ([{"type": "section", "text": {"type": "mrkdwn", "text": "가" * 3001}}],
     "[json-pointer:/blocks/0/text/text]"),
    # a header of 151 characters
    ([SECTION, {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
     "[json-pointer:/blocks/1/text/text]"),
    # 11 fields in one section
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
     "[json-pointer:/blocks/0/fields]"),
])
def test_block_limits(stand_in: SlackStandIn, blocks: list[dict[str, Any]],
                      pointer: str) -> None:
    body = post(stand_in, {"channel": MEMBER.id, "text": "x", "blocks": blocks}).json()

    assert body["ok"] is False
    assert body["error"] == "invalid_blocks"
    assert any(pointer in problem for problem in body["errors"])
    assert stand_in.messages == []


def test_limits_at_maximum_accepted(stand_in: SlackStandIn) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "가" * 3000}},
              {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}]
    blocks += [SECTION] * 48

    body = post(stand_in, {"channel": MEMBER.id, "text": "x", "blocks": blocks}).json()

    assert body["ok"] is True
    assert len(stand_in.messages[0].blocks) == 50


def test_total_block_text_limit(stand_in: SlackStandIn) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}
    body = post(stand_in, {"channel": MEMBER.id, "text": "x", "blocks": [section] * 5}).json()
    assert body == {"ok": False, "error": "msg_blocks_too_long"}


def test_rate_limit_then_ok(stand_in: SlackStandIn) -> None:
    stand_in.rate_limit_next(2, retry_after_seconds=7)

    first = post(stand_in, {"channel": MEMBER.id, "text": "x"})
    second = post(stand_in, {"channel": MEMBER.id, "text": "x"})
    third = post(stand_in, {"channel": MEMBER.id, "text": "x"})

    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "7"
    assert first.json() == {"ok": False, "error": "ratelimited"}
    assert stand_in.request_count == 3
    assert len(stand_in.messages) == 1


def test_unknown_method_is_404(stand_in: SlackStandIn) -> None:
    reply = requests.post(f"{stand_in.base_url}conversations.list", json={},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_method"
    assert stand_in.request_count == 0
