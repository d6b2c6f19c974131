"""A small, strict SSE parser for asserting what clients receive (per the WHATWG rules)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse


@dataclass
class SseMessage:
    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value

    @property
    def type(self) -> str | None:
        if not self.data:
            return None
        return str(self.json.get("type"))


def parse_block(block: str) -> SseMessage:
    message = SseMessage()
    data_lines: list[str] = []
    for line in block.split("\n"):
        if line.startswith(":"):
            message.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            message.id = value
        elif name == "event":
            message.event = value
        elif name == "data":
            data_lines.append(value)
        elif name == "retry":
            message.retry = int(value)
    message.data = "\n".join(data_lines)
    return message


def parse_sse(raw: bytes) -> list[SseMessage]:
    """The complete messages of a body. As in EventSource, a last message that the connection
    cut off before its blank line is dropped."""
    text = raw.decode().replace("\r\n", "\n")
    blocks = text.split("\n\n")
    complete = blocks[:-1]  # the piece after the last blank line is unfinished (or empty)
    return [parse_block(block) for block in complete if block.strip()]


async def iter_sse(response: ClientResponse) -> AsyncIterator[SseMessage]:
    """Messages as they arrive on a live response."""
    buffer = ""
    async for chunk in response.content.iter_any():
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.strip():
                yield parse_block(block)


def data_events(messages: list[SseMessage]) -> list[dict[str, Any]]:
    return [m.json for m in messages if m.data]


def job_events(messages: list[SseMessage]) -> list[dict[str, Any]]:
    """The job's own events: what carries an id (no heartbeats, no snapshot)."""
    return [m.json for m in messages if m.data and m.id is not None]
