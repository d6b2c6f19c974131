"""A job event ready for the wire: decoded once, encoded once, shared by every client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import sse
from shared.wire import Event


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    type: str
    payload: dict[str, Any]
    wire: bytes


def frame_from_event(event: Event) -> Frame:
    body = sse.json_line({"type": event.type, **event.payload})
    return Frame(event.seq, event.type, event.payload, sse.event_frame(event.seq, body))
