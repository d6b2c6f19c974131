"""Encoding Server-Sent Events to bytes. Pure functions, so the wire format is tested on its own
and an event is encoded once for all of its clients."""

from __future__ import annotations

import json
from typing import Any

# One encoder for every frame: ``json.dumps`` with options builds a new JSONEncoder per call,
# which was half the cost of encoding a small event (1.8 us instead of 3.3 us per frame).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_line(payload: dict[str, Any]) -> bytes:
    """Compact JSON on one line (``json`` escapes newlines inside strings)."""
    return _ENCODER.encode(payload).encode()


def event_frame(seq: int, data: bytes) -> bytes:
    """An event a client can resume after: ``id: <seq>`` then ``data: <json>``."""
    return b"id: %d\ndata: %s\n\n" % (seq, data)


def data_frame(data: bytes) -> bytes:
    """An event with no id (heartbeats): it does not move the client's Last-Event-ID."""
    return b"data: %s\n\n" % data


def named_frame(name: str, data: bytes) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), data)


def retry_frame(retry_ms: int) -> bytes:
    return b"retry: %d\n\n" % retry_ms


def comment_frame(text: str) -> bytes:
    return b": %s\n\n" % text.encode()
