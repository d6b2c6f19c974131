"""The gateway's routes as requests and parsers, without I/O: the async and the sync client
send the same ``Call``s, each with its own HTTP client."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chatstream_client.errors import ProtocolError, error_from_response
from chatstream_client.fields import Fields
from chatstream_client.follow import HttpRequest, path_segment
from chatstream_client.models import (
    Document,
    Message,
    Session,
    SessionPage,
    Ticket,
    messages_from_json,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    request: HttpRequest
    parse: Callable[[int, Any], T]
    # Error statuses that are an answer of this call rather than a failure.
    answers: frozenset[int] = frozenset()

    def result(self, status: int, retry_after: str | None, body: bytes) -> T:
        if status >= 400 and status not in self.answers:
            raise error_from_response(status, retry_after, body)
        try:
            value = json.loads(body) if body else None
        except ValueError as e:
            raise ProtocolError(f"{self.request.path} answered with a body that is not JSON") from e
        return self.parse(status, value)


def _nothing(status: int, body: Any) -> None:
    return None


def create_session(title: str | None, session_id: str | None) -> Call[Session]:
    body: dict[str, Any] = {}
    if title is not None:
        body["title"] = title
    if session_id is not None:
        body["id"] = session_id
    request = HttpRequest("POST", "/api/v1/sessions", json=body)
    return Call(request, lambda status, value: Session.from_json(value))


def list_sessions(limit: int, cursor: str | None) -> Call[SessionPage]:
    params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
    request = HttpRequest("GET", "/api/v1/sessions", params=params)
    return Call(request, lambda status, value: SessionPage.from_json(value))


def _session_path(session_id: str) -> str:
    return f"/api/v1/sessions/{path_segment(session_id)}"


def get_session(session_id: str) -> Call[Session]:
    request = HttpRequest("GET", _session_path(session_id))
    return Call(request, lambda status, value: Session.from_json(value))


def rename_session(session_id: str, title: str) -> Call[Session]:
    request = HttpRequest("PATCH", _session_path(session_id), json={"title": title})
    return Call(request, lambda status, value: Session.from_json(value))


def delete_session(session_id: str) -> Call[None]:
    return Call(HttpRequest("DELETE", _session_path(session_id)), _nothing)


def messages(session_id: str) -> Call[tuple[Message, ...]]:
    request = HttpRequest("GET", f"{_session_path(session_id)}/messages")
    return Call(
        request,
        lambda status, value: messages_from_json(Fields(value, "messages").items("messages")),
    )


def create_ticket(job_id: str) -> Call[Ticket]:
    request = HttpRequest("POST", "/api/v1/stream-tickets", json={"jobId": job_id})
    return Call(request, lambda status, value: Ticket.from_json(value))


def cancel(job_id: str) -> Call[bool]:
    """True when the job is being stopped; False when it had already ended (409)."""
    request = HttpRequest("POST", f"/api/v1/streams/{path_segment(job_id)}/cancel")
    return Call(request, lambda status, value: status == 202, answers=frozenset({409}))


def _documents_path(project: str) -> str:
    return f"/api/v1/projects/{path_segment(project)}/documents"


def add_document(project: str, name: str, content: str, format: str) -> Call[Document]:
    body = {"name": name, "content": content, "format": format}
    request = HttpRequest("POST", _documents_path(project), json=body)
    return Call(request, lambda status, value: Document.from_json(value))


def list_documents(project: str) -> Call[tuple[Document, ...]]:
    def parse(status: int, value: Any) -> tuple[Document, ...]:
        return tuple(Document.from_json(d) for d in Fields(value, "documents").items("documents"))

    return Call(HttpRequest("GET", _documents_path(project)), parse)


def delete_document(project: str, document_id: str) -> Call[None]:
    path = f"{_documents_path(project)}/{path_segment(document_id)}"
    return Call(HttpRequest("DELETE", path), _nothing)


# The requests that start a job; the stream follows it from there.


def chat(
    text: str, session_id: str | None, project: str | None, pipeline: str | None
) -> HttpRequest:
    """A question, into ``session_id`` or a new session; with ``project``, answered from that
    knowledge collection (``POST /api/v1/projects/{project}/chat-stream``), else through
    ``POST /api/v1/chat/stream``, which opens with the session's snapshot."""
    body: dict[str, Any] = {} if pipeline is None else {"pipeline": pipeline}
    if project is not None:
        body |= {"message": text} | ({"session_id": session_id} if session_id else {})
        return HttpRequest("POST", f"/api/v1/projects/{path_segment(project)}/chat-stream", body)
    body |= {"text": text} | ({"conversation_id": session_id} if session_id else {})
    return HttpRequest("POST", "/api/v1/chat/stream", body)


def send_message(
    session_id: str, content: str, pipeline: str | None, simple_language: bool
) -> HttpRequest:
    body: dict[str, Any] = {"content": content, "simple_language": simple_language}
    if pipeline is not None:
        body["pipeline"] = pipeline
    return HttpRequest("POST", f"{_session_path(session_id)}/messages/stream", body)
