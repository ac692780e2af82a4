"""Slack Block Kit messages: mrkdwn escaping, block builders, splitting within Slack's limits.

The daily report and the failure alerts are built as one list of blocks, then packed into
as many messages as Slack's limits need. Nothing is dropped to fit: a long text becomes
several sections, and blocks past a message's limits go into the next message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Block = dict[str, Any]

# Limits that Slack documents for Block Kit; chat.postMessage rejects a message that breaks
# one with invalid_blocks.
MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_FIELDS = 10
MAX_HEADER_CHARS = 150
# Slack also rejects a message whose blocks hold too much text in all (msg_blocks_too_long).
# That limit is not documented, and users of the API report it near 12,000 characters. Each
# message stays below this estimate, with room for the block structure.
MAX_MESSAGE_CHARS = 10_000
HEADING_PREFIX = "heading:"
ELLIPSIS = "…"


@dataclass(frozen=True)
class Message:
    """One chat.postMessage: the blocks, and the plain `text` that notifications show."""

    text: str
    blocks: list[Block]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def escape(text: str) -> str:
    """Escape user text for mrkdwn, so it cannot form a link, a mention or a channel name.

    Slack reads `<…>` as a link or mention and `&` as the start of an entity. Every other
    character, Korean and emoji included, passes as it is.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def header(text: str) -> Block:
    """Build a header block of plain text (no escaping needed), cut to 150 characters."""
    return {"type": "header",
            "text": {"type": "plain_text", "text": _cut(text, MAX_HEADER_CHARS), "emoji": True}}


def sections(text: str) -> list[Block]:
    """Build one mrkdwn section per 3,000 characters of `text`, split between lines."""
    return [_section(part) for part in split_text(text, MAX_SECTION_CHARS)]


def heading(text: str, key: str) -> Block:
    """Build a one-line section that opens a list; packing keeps it with the next block."""
    block = _section(text)
    block["block_id"] = f"{HEADING_PREFIX}{key}"
    return block


def fields(texts: Sequence[str]) -> Block:
    """Build a section of up to 10 short mrkdwn fields, shown in two columns."""
    if len(texts) > MAX_FIELDS:
        raise ValueError(f"a section takes at most {MAX_FIELDS} fields, got {len(texts)}")
    return {"type": "section",
            "fields": [_mrkdwn(_cut(text, MAX_FIELD_CHARS)) for text in texts]}


def context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(_cut(text, MAX_SECTION_CHARS))]}


def divider() -> Block:
    return {"type": "divider"}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim keeps Slack from turning bare URLs and #channel names in user text into links.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into parts of at most `limit` characters, between lines where possible.

    A single line longer than `limit` is cut, never inside an escape such as `&amp;`.
    """
    parts: list[str] = []
    current = ""
    for line in _cut_lines(text.split("\n"), limit):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        parts.append(current)
        current = line
    parts.append(current)
    return parts


def _cut_lines(lines: Sequence[str], limit: int) -> list[str]:
    pieces: list[str] = []
    for line in lines:
        while len(line) > limit:
            cut = limit
            entity = line.rfind("&", 0, cut)
            # An escape is at most 5 characters (&amp;); cut before one that the limit splits.
            if entity > cut - 5 and ";" not in line[entity:cut]:
                cut = entity
            pieces.append(line[:cut])
            line = line[cut:]
        pieces.append(line)
    return pieces


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def block_chars(block: Block) -> int:
    """Count the characters of text in a block, for the per-message total."""
    return sum(len(str(item.get("text", ""))) for item in _text_objects(block))


def _text_objects(block: Block) -> list[dict[str, Any]]:
    items = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
    return [item for item in items if isinstance(item, dict)]


def pack_messages(blocks: Sequence[Block], *, text: str,
                  continued: Callable[[int, int], str]) -> list[Message]:
    """Pack blocks in order into messages within Slack's block and text limits.

    The first message carries `text` as its notification text. Each later one starts with a
    context block `continued(number, total)` and uses that as its text too.
    """
    chunks = _chunk(blocks)
    total = len(chunks)
    messages = [Message(text, chunks[0])]
    for number, chunk in enumerate(chunks[1:], start=2):
        label = continued(number, total)
        messages.append(Message(f"{text} {label}", [context(label), *chunk]))
    return messages


def _chunk(blocks: Sequence[Block]) -> list[list[Block]]:
    chunks: list[list[Block]] = [[]]
    chars = 0
    for block in blocks:
        size = block_chars(block)
        current = chunks[-1]
        # Later messages give one block and a little text to their "continued" line.
        limit = MAX_BLOCKS if len(chunks) == 1 else MAX_BLOCKS - 1
        if current and (len(current) >= limit or chars + size > MAX_MESSAGE_CHARS - 100):
            carried = _take_trailing_headings(current)
            chunks.append(carried)
            chars = sum(block_chars(item) for item in carried)
        chunks[-1].append(block)
        chars += size
    return chunks


def _take_trailing_headings(chunk: list[Block]) -> list[Block]:
    """Remove the headings that end `chunk` and return them, unless they are all it has."""
    count = 0
    while count < len(chunk) and _is_heading(chunk[-1 - count]):
        count += 1
    if count == 0 or count == len(chunk):
        return []
    carried = chunk[-count:]
    del chunk[-count:]
    return carried


def _is_heading(block: Block) -> bool:
    return str(block.get("block_id", "")).startswith(HEADING_PREFIX)


def render_plain(messages: Sequence[Message], *, separator: Callable[[int, int], str]) -> str:
    """Render messages for a terminal: mrkdwn unescaped, one line per block line."""
    lines: list[str] = []
    for number, message in enumerate(messages, start=1):
        if number > 1:
            lines += ["", separator(number, len(messages))]
        for block in message.blocks:
            lines += _render_block(block)
    return "\n".join(lines)


def _render_block(block: Block) -> list[str]:
    kind = block.get("type")
    if kind == "divider":
        return ["-" * 40]
    if kind == "header":
        title = str(block["text"]["text"])
        return [title, "=" * min(len(title) * 2, 80)]
    # A field is a label and a value on two lines; one line reads better in a terminal.
    return [unescape(str(item.get("text", ""))).replace("\n", " ") if "fields" in block
            else unescape(str(item.get("text", ""))) for item in _text_objects(block)]
