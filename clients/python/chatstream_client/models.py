"""The resources the gateway answers with (docs/api.md), as frozen dataclasses with Python
names; each has ``from_json``, which raises ProtocolError on a body the contract does not
allow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatstream_client.fields import Fields


@dataclass(frozen=True, slots=True)
class Citation:
    """One passage an answer cites (docs/api.md, "Citations")."""

    id: int  # the n of the answer's [n] marker
    project: str
    document_id: str
    document: str  # the document's name
    chunk_id: str
    score: float
    quotes: tuple[str, ...]  # the passage's sentences the answer quotes; may be empty

    @classmethod
    def from_json(cls, value: object) -> Citation:
        f = Fields(value, "citation")
        return cls(
            id=f.whole("id"),
            project=f.text("project"),
            document_id=f.text("documentId"),
            document=f.text("document"),
            chunk_id=f.text("chunkId"),
            score=f.number("score"),
            quotes=f.texts("quotes"),
        )


def citations_from_json(values: list[Any]) -> tuple[Citation, ...]:
    return tuple(Citation.from_json(v) for v in values)


@dataclass(frozen=True, slots=True)
class Usage:
    tokens: int
    ttft_ms: int | None  # none when the answer had no token
    duration_ms: int

    @classmethod
    def from_json(cls, value: object) -> Usage:
        f = Fields(value, "usage")
        return cls(f.whole("tokens"), f.optional_whole("ttftMs"), f.whole("durationMs"))


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    title: str
    user_id: str
    created_at: datetime
    updated_at: datetime
    message_count: int

    @classmethod
    def from_json(cls, value: object) -> Session:
        f = Fields(value, "session")
        return cls(
            id=f.text("id"),
            title=f.text("title"),
            user_id=f.text("userId"),
            created_at=f.time("createdAt"),
            updated_at=f.time("updatedAt"),
            message_count=f.whole("messageCount"),
        )


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of ``list_sessions``, most recently updated first."""

    sessions: tuple[Session, ...]
    next_cursor: str | None  # pass it as ``cursor`` for the next page; None on the last

    @classmethod
    def from_json(cls, value: object) -> SessionPage:
        f = Fields(value, "session list")
        sessions = tuple(Session.from_json(s) for s in f.items("sessions"))
        return cls(sessions, f.optional_text("nextCursor"))


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    role: str  # "user" or "assistant"
    content: str
    status: str  # "complete", "streaming", "cancelled" or "error"
    created_at: datetime
    job_id: str | None = None
    citations: tuple[Citation, ...] = ()
    usage: Usage | None = None

    @classmethod
    def from_json(cls, value: object) -> Message:
        f = Fields(value, "message")
        usage = f.value.get("usage")
        return cls(
            id=f.text("id"),
            role=f.text("role"),
            content=f.text("content"),
            status=f.text("status"),
            created_at=f.time("createdAt"),
            job_id=f.optional_text("jobId"),
            citations=citations_from_json(f.items("citations", optional=True)),
            # A message that ended without an answer stores an empty usage.
            usage=Usage.from_json(usage) if usage else None,
        )


def messages_from_json(values: list[Any]) -> tuple[Message, ...]:
    return tuple(Message.from_json(m) for m in values)


@dataclass(frozen=True, slots=True)
class Ticket:
    """Opens one job's stream without the bearer token, until ``expires_at``: for a process
    or a browser's EventSource that must not hold the token (docs/api.md, "Authentication")."""

    ticket: str
    expires_at: datetime

    @classmethod
    def from_json(cls, value: object) -> Ticket:
        f = Fields(value, "ticket")
        return cls(f.text("ticket"), f.time("expiresAt"))


@dataclass(frozen=True, slots=True)
class Document:
    """A document of a project's knowledge collection."""

    id: str
    project: str
    name: str
    format: str  # "markdown", "text" or "html"
    chunks: int
    chars: int
    created_at: datetime

    @classmethod
    def from_json(cls, value: object) -> Document:
        f = Fields(value, "document")
        return cls(
            id=f.text("id"),
            project=f.text("project"),
            name=f.text("name"),
            format=f.text("format"),
            chunks=f.whole("chunks"),
            chars=f.whole("chars"),
            created_at=f.time("createdAt"),
        )
