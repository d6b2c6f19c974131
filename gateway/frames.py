"""A job event ready for the wire: decoded once, encoded once, shared by every client."""

from __future__ import annotations

from typing import Any, NamedTuple

from gateway import sse
from shared import events
from shared.wire import Event


class Frame(NamedTuple):
    """Immutable, as every client of the job shares it; a named tuple rather than a frozen
    dataclass, which sets each field through ``object.__setattr__`` (one is built per event:
    1.7 against 0.8 µs on the sixth pass's machine)."""

    seq: int
    type: str
    payload: dict[str, Any]
    wire: bytes


def frame_from_event(event: Event) -> Frame:
    body = sse.json_line({"type": event.type, **event.payload})
    return Frame(event.seq, event.type, event.payload, sse.event_frame(event.seq, body))


def merge_tokens(frames: list[Frame]) -> Frame:
    """Consecutive token frames as one: their text joined, under the last one's seq (so a client
    that resumes after it has everything up to there)."""
    text = "".join(str(frame.payload.get("content", "")) for frame in frames)
    return frame_from_event(
        Event(job_id="", seq=frames[-1].seq, type=events.TOKEN, payload=events.token_payload(text))
    )
