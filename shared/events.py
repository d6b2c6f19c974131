"""The event of chatstream: one step of a job's answer, from its ``start`` to its ``end``.

Here are the :class:`Event` itself, its types, the client-facing payload of each type, and its
encodings: msgpack between the services (worker to gateway, over Redis pub/sub and the replay
log) and Server-Sent Events to clients. Workers build payloads with these functions and the
gateway relays them unchanged, so every streaming route speaks the same events (see
docs/api.md, "Events").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from shared import wire
from shared.sse import event_frame, json_line
from shared.wire import WIRE_VERSION, WireError

START: Final = "start"
PROGRESS: Final = "progress"
TOKEN: Final = "token"
HEARTBEAT: Final = "heartbeat"
RESET: Final = "reset"
END: Final = "end"
ERROR: Final = "error"
SNAPSHOT: Final = "snapshot"

# A job's stream is over once one of these is relayed.
TERMINAL_TYPES: Final = frozenset({END, ERROR})

# The progress steps, in the order every pipeline reports them.
PROGRESS_STEPS: Final = (
    "start",
    "context",
    "analyzing",
    "planning",
    "validation",
    "execution",
    "memory",
    "completion",
)

FINISH_STOP: Final = "stop"
FINISH_CANCELLED: Final = "cancelled"
FINISH_LENGTH: Final = "length"


@dataclass(slots=True)
class Event:
    """One event of a job. ``seq`` rises by one from 1 within the job; ``payload`` holds the
    client-facing fields besides ``type``.

    The gateway hands the same event to every client of the job: treat it as immutable. It is
    not frozen because a frozen dataclass sets each field through ``object.__setattr__``, which
    makes building one (once per event) twice as slow; slots make reading its fields, once per
    client, faster than a named tuple's.
    """

    job_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    _sse: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def sse(self) -> bytes:
        """The event as a Server-Sent Event a client can resume after (``id: <seq>`` and
        ``data: <json>``). Encoded on first read and kept, so the gateway encodes each event
        once and every client of the job writes the same bytes, while a worker, which sends
        events to no client, never encodes one."""
        encoded = self._sse
        if encoded is None:
            body = json_line({"type": self.type, **self.payload})
            encoded = self._sse = event_frame(self.seq, body)
        return encoded


def encode_event(event: Event) -> bytes:
    """The event as msgpack; raises :class:`WireError` if its payload cannot be encoded."""
    return wire.pack(
        {
            "v": WIRE_VERSION,
            "job_id": event.job_id,
            "seq": event.seq,
            "type": event.type,
            "payload": event.payload,
        },
        "event",
    )


def decode_event(raw: bytes) -> Event:
    """The event in ``raw``; raises :class:`WireError` if it is not an event of this wire
    version."""
    data = wire.unpack(raw, "event")
    try:
        seq = data["seq"]
        payload = data["payload"]
        # type(), not isinstance(): msgpack's booleans are ints to isinstance.
        if type(seq) is not int or seq < 1:
            raise ValueError(f"seq must be a positive integer, not {seq!r}")
        if not isinstance(payload, dict):
            raise TypeError("payload must be a map")
        return Event(wire.text(data["job_id"]), seq, wire.text(data["type"]), payload)
    except (KeyError, TypeError, ValueError) as e:
        raise WireError(f"malformed event: {e!r}") from e


def merge_tokens(tokens: Sequence[Event]) -> Event:
    """Consecutive token events as one (for a client that reads slower than the job writes):
    their text joined, under the last one's seq, so a client that resumes after it has
    everything up to there."""
    text = "".join(str(token.payload.get("content", "")) for token in tokens)
    last = tokens[-1]
    return Event(last.job_id, last.seq, TOKEN, token_payload(text))


# The last second formatted, and its text: every heartbeat and progress event carries a
# timestamp, and formatting a datetime was most of the cost of a heartbeat's frame.
_formatted_second: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """The current time as ISO-8601 in UTC, with milliseconds and a ``Z``."""
    return iso_from_epoch_ms(time.time_ns() // 1_000_000)


def iso_from_epoch_ms(epoch_ms: int) -> str:
    """``epoch_ms`` as ISO-8601 in UTC, with milliseconds and a ``Z``."""
    global _formatted_second  # noqa: PLW0603 - a one-entry cache
    second, milliseconds = divmod(epoch_ms, 1000)
    cached_second, prefix = _formatted_second
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _formatted_second = (second, prefix)
    return f"{prefix}.{milliseconds:03d}Z"


def iso_from_epoch(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def start_payload(*, job_id: str, session_id: str, message_id: str) -> dict[str, Any]:
    return {"jobId": job_id, "sessionId": session_id, "messageId": message_id}


def progress_payload(
    step: str, message: str, *, details: str = "", metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "progress": {
            "step": step,
            "message": message,
            "details": details,
            "timestamp": utc_now_iso(),
            "metadata": metadata or {},
        }
    }


def token_payload(text: str) -> dict[str, Any]:
    return {"content": text, "delta": text, "done": False}


def end_payload(
    *,
    message_id: str,
    content: str,
    finish_reason: str,
    tokens: int,
    ttft_ms: int | None,
    duration_ms: int,
    citations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "delta": "",
        "done": True,
        "finishReason": finish_reason,
        "content": content,
        "citations": citations or [],
        "usage": {"tokens": tokens, "ttftMs": ttft_ms, "durationMs": duration_ms},
    }


def error_payload(message: str, code: str, retry_after_ms: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"error": message, "code": code}
    if retry_after_ms is not None:
        payload["retryAfterMs"] = retry_after_ms
    return payload


def heartbeat_payload(phase: str, queue_position: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": HEARTBEAT, "timestamp": utc_now_iso(), "phase": phase}
    if queue_position is not None:
        payload["queuePosition"] = queue_position
    return payload
