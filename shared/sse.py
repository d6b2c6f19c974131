"""Encoding Server-Sent Events to bytes. Pure functions, so the wire format is tested on its own
and an event is encoded once for all of its clients.

Every ``data:`` line holds compact JSON, which escapes any newline inside a string, so one
event's data never spans two lines.
"""

from __future__ import annotations

from typing import Any

import orjson


def json_line(payload: dict[str, Any]) -> bytes:
    """Compact JSON on one line (newlines inside strings are escaped). orjson, because this runs
    once per event and the standard library's encoder was most of the cost of framing one."""
    return orjson.dumps(payload)


def event_frame(seq: int, data: bytes) -> bytes:
    """An event a client can resume after: ``id: <seq>`` then ``data: <json>``."""
    return b"id: %d\ndata: %s\n\n" % (seq, data)


def data_frame(data: bytes) -> bytes:
    """An event with no id (heartbeats): it does not move the client's Last-Event-ID."""
    return b"data: %s\n\n" % data


def named_frame(name: str, data: bytes) -> bytes:
    """An event a client dispatches by ``name`` (``event: <name>``), with no id."""
    return b"event: %s\ndata: %s\n\n" % (name.encode(), data)


def retry_frame(retry_ms: int) -> bytes:
    """How long a client waits before reconnecting, in milliseconds."""
    return b"retry: %d\n\n" % retry_ms


def comment_frame(text: str) -> bytes:
    """A comment line: clients ignore it; proxies see traffic (keep-alives)."""
    return b": %s\n\n" % text.encode()
