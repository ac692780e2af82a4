"""Block Kit helpers: escaping, splitting long texts, packing blocks into messages."""

from __future__ import annotations

import pytest

from rpa import blocks
from rpa.blocks import MAX_BLOCKS, MAX_MESSAGE_CHARS, MAX_SECTION_CHARS, block_chars


@pytest.mark.parametrize(("raw", "escaped"), [
    # the three characters Slack reads as markup
    ("R&D <팀> @here", "R&amp;D &lt;팀&gt; @here"),
    # a link and a mention in Slack's own syntax lose their brackets
    ("<https://evil.example|click> <!channel>",
     "&lt;https://evil.example|click&gt; &lt;!channel&gt;"),
    # an escape typed by a user stays visible as typed
    ("&amp;", "&amp;amp;"),
    # Korean and emoji pass unchanged
    ("이서연 🚀 (데이터플랫폼팀)", "이서연 🚀 (데이터플랫폼팀)"),
])
def test_escape(raw: str, escaped: str) -> None:
    assert blocks.escape(raw) == escaped
    assert blocks.unescape(escaped) == raw


def test_split_text_between_lines() -> None:
    lines = [f"line {n:03d} " + "가" * 40 for n in range(200)]

    parts = blocks.split_text("\n".join(lines), MAX_SECTION_CHARS)

    assert len(parts) > 1
    assert all(len(part) <= MAX_SECTION_CHARS for part in parts)
    assert "\n".join(parts).split("\n") == lines


def test_split_long_line_keeps_escapes_whole() -> None:
    line = "x" * 2998 + "&amp;" + "y" * 10

    parts = blocks.split_text(line, MAX_SECTION_CHARS)

    assert parts == ["x" * 2998, "&amp;" + "y" * 10]


def test_header_cut_to_limit() -> None:
    header = blocks.header("제목" * 100)
    assert len(header["text"]["text"]) == 150
    assert header["text"]["text"].endswith("…")


def test_fields_reject_more_than_ten() -> None:
    with pytest.raises(ValueError, match="at most 10 fields"):
        blocks.fields(["f"] * 11)


def continued(number: int, total: int) -> str:
    return f"(continued {number}/{total})"


def test_pack_splits_by_block_count() -> None:
    content = [blocks.sections(f"account {n}")[0] for n in range(120)]

    messages = blocks.pack_messages(content, text="report", continued=continued)

    # 50, then 49 and 21 after each "continued" line.
    assert [len(m.blocks) for m in messages] == [50, 50, 22]
    assert messages[1].blocks[0] == blocks.context("(continued 2/3)")
    assert messages[1].text == "report (continued 2/3)"
    texts = [b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section"]
    assert texts == [f"account {n}" for n in range(120)]


def test_pack_splits_by_text_size() -> None:
    content = [blocks.sections("가" * 2500)[0] for _ in range(10)]

    messages = blocks.pack_messages(content, text="report", continued=continued)

    assert len(messages) > 1
    for message in messages:
        assert len(message.blocks) <= MAX_BLOCKS
        assert sum(block_chars(block) for block in message.blocks) <= MAX_MESSAGE_CHARS


def test_pack_moves_trailing_heading() -> None:
    content = [blocks.sections(f"item {n}")[0] for n in range(49)]
    content += [blocks.heading("*List*", "list"), blocks.sections("first of list")[0]]

    messages = blocks.pack_messages(content, text="report", continued=continued)

    assert len(messages[0].blocks) == 49
    assert messages[1].blocks[1]["text"]["text"] == "*List*"
    assert messages[1].blocks[2]["text"]["text"] == "first of list"


def test_render_plain_unescapes() -> None:
    content = [blocks.header("제목"), blocks.fields(["*사용 중*\n30"]),
               blocks.sections("R&amp;D &lt;팀&gt;")[0], blocks.divider()]
    messages = blocks.pack_messages(content, text="t", continued=continued)

    rendered = blocks.render_plain(messages, separator=continued)

    assert rendered.splitlines() == ["제목", "=" * 4, "*사용 중* 30", "R&D <팀>", "-" * 40]
