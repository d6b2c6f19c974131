"""A stream's events (docs/api.md, "Events") as frozen dataclasses, and ``decode_event``, which
turns one SSE message's JSON into one of them.

Each class has a ``type`` that equals the contract's, so ``event.type == "token"`` and
``match event: case TokenEvent(content=text)`` both work. ``seq`` is the event's id on the
wire; heartbeats, the snapshot and the client's own ``Reconnecting`` have none. A type that
this version does not know arrives as an ``UnknownEvent`` rather than an error, so a newer
gateway does not break an older client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from chatstream_client.errors import ProtocolError
from chatstream_client.fields import Fields
from chatstream_client.models import (
    Citation,
    Message,
    Session,
    Usage,
    citations_from_json,
    messages_from_json,
)


@dataclass(frozen=True, slots=True)
class StartEvent:
    """The job started; the first event of every job."""

    job_id: str
    session_id: str
    message_id: str
    seq: int | None = None
    type: ClassVar[Literal["start"]] = "start"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A pipeline step: ``start``, ``context``, ``analyzing``, ``planning``, ``validation``,
    ``execution``, ``memory``, ``completion``, in that order."""

    step: str
    message: str
    details: str
    timestamp: datetime
    metadata: dict[str, Any]
    seq: int | None = None
    type: ClassVar[Literal["progress"]] = "progress"


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """New text of the answer."""

    content: str
    seq: int | None = None
    type: ClassVar[Literal["token"]] = "token"


@dataclass(frozen=True, slots=True)
class HeartbeatEvent:
    timestamp: datetime
    phase: str  # "queued" or "running"
    queue_position: int | None = None
    seq: int | None = None
    type: ClassVar[Literal["heartbeat"]] = "heartbeat"


@dataclass(frozen=True, slots=True)
class ResetEvent:
    """Drop what was shown of this answer: a fresh copy follows, then ``end``."""

    reason: str
    seq: int | None = None
    type: ClassVar[Literal["reset"]] = "reset"


@dataclass(frozen=True, slots=True)
class EndEvent:
    """The answer is complete; the last event of a job that did not fail."""

    message_id: str
    finish_reason: str  # "stop", "cancelled" or "length"
    content: str  # the whole answer
    citations: tuple[Citation, ...]
    usage: Usage
    seq: int | None = None
    type: ClassVar[Literal["end"]] = "end"


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """The job failed; the last event of its stream."""

    message: str
    code: str  # e.g. "pipeline_error", "job_stalled" (docs/api.md, "Events")
    seq: int | None = None
    type: ClassVar[Literal["error"]] = "error"


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    """The session and its messages, which ``POST /api/v1/chat/stream`` opens with."""

    session: Session
    messages: tuple[Message, ...]
    seq: int | None = None
    type: ClassVar[Literal["snapshot"]] = "snapshot"


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Not from the gateway: the client lost the connection and resumes after ``delay_s``."""

    attempt: int
    delay_s: float
    reason: str
    seq: int | None = None
    type: ClassVar[Literal["reconnecting"]] = "reconnecting"


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type this version of the client does not know; ``data`` is its JSON."""

    name: str
    data: dict[str, Any]
    seq: int | None = None
    type: ClassVar[Literal["unknown"]] = "unknown"


Event = (
    StartEvent
    | ProgressEvent
    | TokenEvent
    | HeartbeatEvent
    | ResetEvent
    | EndEvent
    | ErrorEvent
    | SnapshotEvent
    | Reconnecting
    | UnknownEvent
)

TERMINAL = (EndEvent, ErrorEvent)


def decode_event(data: str, seq: int | None = None) -> Event:
    """One SSE message's ``data`` as a typed event; ProtocolError when it is not an event."""
    try:
        value = json.loads(data)
    except ValueError as e:
        raise ProtocolError(f"an event that is not JSON: {data[:80]!r}") from e
    f = Fields(value, "event")
    kind = f.text("type")
    decode = _DECODERS.get(kind)
    if decode is None:
        return UnknownEvent(kind, f.value, seq)
    return decode(Fields(value, f"{kind} event"), seq)


def _start(f: Fields, seq: int | None) -> Event:
    return StartEvent(f.text("jobId"), f.text("sessionId"), f.text("messageId"), seq)


def _progress(f: Fields, seq: int | None) -> Event:
    p = f.nested("progress")
    return ProgressEvent(
        step=p.text("step"),
        message=p.text("message"),
        details=p.text("details"),
        timestamp=p.time("timestamp"),
        metadata=p.mapping("metadata"),
        seq=seq,
    )


def _token(f: Fields, seq: int | None) -> Event:
    return TokenEvent(f.text("content"), seq)


def _heartbeat(f: Fields, seq: int | None) -> Event:
    return HeartbeatEvent(
        f.time("timestamp"), f.text("phase"), f.optional_whole("queuePosition"), seq
    )


def _reset(f: Fields, seq: int | None) -> Event:
    return ResetEvent(f.text("reason"), seq)


def _end(f: Fields, seq: int | None) -> Event:
    return EndEvent(
        message_id=f.text("messageId"),
        finish_reason=f.text("finishReason"),
        content=f.text("content"),
        citations=citations_from_json(f.items("citations")),
        usage=Usage.from_json(f.value.get("usage")),
        seq=seq,
    )


def _error(f: Fields, seq: int | None) -> Event:
    return ErrorEvent(f.text("error"), f.text("code"), seq)


def _snapshot(f: Fields, seq: int | None) -> Event:
    return SnapshotEvent(
        Session.from_json(f.value.get("session")), messages_from_json(f.items("messages")), seq
    )


_DECODERS = {
    StartEvent.type: _start,
    ProgressEvent.type: _progress,
    TokenEvent.type: _token,
    HeartbeatEvent.type: _heartbeat,
    ResetEvent.type: _reset,
    EndEvent.type: _end,
    ErrorEvent.type: _error,
    SnapshotEvent.type: _snapshot,
}
