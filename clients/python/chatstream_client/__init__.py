"""chatstream-client: the chatstream gateway's API for Python, async and sync.

Answers stream as typed events (``chatstream_client.events``) that resume by themselves with
``Last-Event-ID`` after a dropped connection; sessions, tickets, cancel and a project's
documents are plain calls. The contract it speaks is the gateway's docs/api.md."""

from chatstream_client.aio import AsyncChatstreamClient, AsyncEventStream
from chatstream_client.errors import ChatstreamError, ProtocolError
from chatstream_client.events import (
    EndEvent,
    ErrorEvent,
    Event,
    HeartbeatEvent,
    ProgressEvent,
    Reconnecting,
    ResetEvent,
    SnapshotEvent,
    StartEvent,
    TokenEvent,
    UnknownEvent,
    decode_event,
)
from chatstream_client.follow import Backoff
from chatstream_client.models import (
    Citation,
    Document,
    Message,
    Session,
    SessionPage,
    Ticket,
    Usage,
)
from chatstream_client.sync import ChatstreamClient, EventStream
from chatstream_client.version import __version__

__all__ = [
    "AsyncChatstreamClient",
    "AsyncEventStream",
    "Backoff",
    "ChatstreamClient",
    "ChatstreamError",
    "Citation",
    "Document",
    "EndEvent",
    "ErrorEvent",
    "Event",
    "EventStream",
    "HeartbeatEvent",
    "Message",
    "ProgressEvent",
    "ProtocolError",
    "Reconnecting",
    "ResetEvent",
    "Session",
    "SessionPage",
    "SnapshotEvent",
    "StartEvent",
    "Ticket",
    "TokenEvent",
    "UnknownEvent",
    "Usage",
    "__version__",
    "decode_event",
]
