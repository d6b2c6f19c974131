"""The one event model of chatstream: the client-facing payload of each event type.

Workers build events with these functions; the gateway relays the payloads unchanged, so every
streaming route speaks the same events (see docs/api.md, "Events").
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final

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


# The last second formatted, and its text: every heartbeat and event carries a timestamp, and
# formatting a datetime is most of a heartbeat frame's cost (about 4 of 5 µs).
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


def error_payload(message: str, code: str) -> dict[str, Any]:
    return {"error": message, "code": code}


def heartbeat_payload(phase: str, queue_position: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": HEARTBEAT, "timestamp": utc_now_iso(), "phase": phase}
    if queue_position is not None:
        payload["queuePosition"] = queue_position
    return payload
