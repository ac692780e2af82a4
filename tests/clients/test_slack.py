"""Tests of `SlackClient` over real HTTP against the Slack stand-in on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from rpa.blocks import Message
from rpa.clients import errors
from rpa.clients.slack import SlackClient
from rpa.sandbox.slack import Channel, SlackStandIn

TOKEN = "xoxb-client-test-51d0"
MEMBER = Channel("C0MEMBER01", "general")
OUTSIDER = Channel("C0OUTSIDE1", "secret", is_member=False)
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "이서연 (데이터플랫폼팀) 🚀"}}]


@pytest.fixture
def stand_in() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN, channels=[MEMBER, OUTSIDER]) as server:
        yield server


def make_client(base_url: str, *, token: str = TOKEN, rate_limit_retries: int = 3,
                connection_retries: int = 0) -> SlackClient:
    return SlackClient(token=token, base_url=base_url, timeout_seconds=5,
                       rate_limit_retries=rate_limit_retries,
                       connection_retries=connection_retries)


def post(client: SlackClient, channel: str = MEMBER.id) -> str:
    return client.post_message(channel, text="일일 보고", blocks=BLOCKS,
                               channel_setting="RPA_SLACK_CHANNEL")


def test_post_returns_ts_and_keeps_unicode(stand_in: SlackStandIn) -> None:
    ts = post(make_client(stand_in.base_url))

    [message] = stand_in.messages
    assert message.ts == ts
    assert message.text == "일일 보고"
    assert message.blocks[0]["text"]["text"] == "이서연 (데이터플랫폼팀) 🚀"


def test_thread_replies_to_first(stand_in: SlackStandIn) -> None:
    messages = [Message(f"part {n}", BLOCKS) for n in range(3)]

    posted = make_client(stand_in.base_url).post_thread(MEMBER.id, messages,
                                                        channel_setting="RPA_SLACK_CHANNEL")

    assert len(posted) == 3
    assert [m.thread_ts for m in stand_in.messages] == [None, posted[0], posted[0]]
    assert [m.text for m in stand_in.messages] == ["part 0", "part 1", "part 2"]


@pytest.mark.parametrize(("channel", "token", "error_class", "phrases"), [
    # unknown channel: name it, ask for the ID and the invitation
    ("#no-such-channel", TOKEN, errors.NotFound,
     ["channel_not_found", "'#no-such-channel'", "RPA_SLACK_CHANNEL", "channel ID",
      "/invite @"]),
    # channel without the bot: name it and give the /invite command
    (OUTSIDER.id, TOKEN, errors.Forbidden,
     ["not_in_channel", "'C0OUTSIDE1'", "/invite @", "RPA_SLACK_CHANNEL"]),
    # wrong token: name the setting
    (MEMBER.id, "xoxb-wrong-token", errors.Unauthorized,
     ["invalid_auth", "RPA_SLACK_TOKEN", "xoxb-"]),
])
def test_errors_say_what_to_fix(stand_in: SlackStandIn, channel: str, token: str,
                                error_class: type[errors.ClientError],
                                phrases: list[str]) -> None:
    with pytest.raises(error_class) as caught:
        post(make_client(stand_in.base_url, token=token), channel)

    message = str(caught.value)
    for phrase in phrases:
        assert phrase in message
    assert caught.value.service == "slack"
    assert token not in message


def test_missing_scope_names_scope() -> None:
    with (SlackStandIn(token=TOKEN, channels=[MEMBER], scopes=["channels:read"]) as server,
          pytest.raises(errors.Forbidden) as caught):
        post(make_client(server.base_url))

    message = str(caught.value)
    assert "missing_scope" in message
    assert "lacks the scope chat:write" in message
    assert "it has channels:read" in message
    assert "RPA_SLACK_TOKEN" in message


def test_invalid_blocks_lists_pointer(stand_in: SlackStandIn) -> None:
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    client = make_client(stand_in.base_url)

    with pytest.raises(errors.InvalidRequest) as caught:
        client.post_message(MEMBER.id, text="x", blocks=too_long,
                            channel_setting="RPA_SLACK_CHANNEL")

    assert "invalid_blocks" in str(caught.value)
    assert "/blocks/0/text/text" in str(caught.value)


def test_rate_limit_retried(stand_in: SlackStandIn) -> None:
    stand_in.rate_limit_next(2, retry_after_seconds=0)

    post(make_client(stand_in.base_url, rate_limit_retries=2))

    assert stand_in.request_count == 3
    assert len(stand_in.messages) == 1


def test_rate_limit_retries_run_out(stand_in: SlackStandIn) -> None:
    stand_in.rate_limit_next(5, retry_after_seconds=0)

    with pytest.raises(errors.Throttled) as caught:
        post(make_client(stand_in.base_url, rate_limit_retries=1))

    assert stand_in.request_count == 2
    assert "after 1 retries" in str(caught.value)
    assert stand_in.messages == []


def free_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens, so connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"


def test_connection_refused_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    base_url = free_port_url()
    client = make_client(base_url, connection_retries=1)

    with caplog.at_level(logging.DEBUG), pytest.raises(errors.Unavailable) as caught:
        post(client)

    assert base_url in str(caught.value)
    assert "after 1 retries" in str(caught.value)
    assert TOKEN not in caplog.text


def test_token_never_logged(stand_in: SlackStandIn, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(stand_in.base_url)
    with caplog.at_level(logging.DEBUG):
        post(client)
        with pytest.raises(errors.NotFound):
            post(client, "C0NOWHERE1")
    assert TOKEN not in caplog.text
