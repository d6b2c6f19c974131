"""The sync client: ``ChatstreamClient`` and the ``EventStream`` of one answer; the same
requests and the same ``Follow`` as the async one, on httpx2's blocking client."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import TypeVar

import httpx2

from chatstream_client import calls
from chatstream_client.config import ClientConfig
from chatstream_client.errors import ChatstreamError, StreamCut, unreachable
from chatstream_client.events import Event
from chatstream_client.follow import Backoff, Follow, FollowedStream, HttpRequest
from chatstream_client.models import Document, Message, Session, SessionPage, Ticket

T = TypeVar("T")


class EventStream(FollowedStream):
    """One answer's events, in order, each once, across as many connections as it takes.

    Iterate it with ``for``; it ends after the ``EndEvent`` or ``ErrorEvent``. A dropped,
    failed or silent connection is resumed with ``Last-Event-ID``, after a ``Reconnecting``
    event. Use it as a context manager (or call ``close``) when you may stop early."""

    def __init__(self, client: ChatstreamClient, follow: Follow) -> None:
        self._client = client
        self._follow = follow
        self._events = self._run()

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the job goes on; ``cancel`` stops it)."""
        self._events.close()

    def cancel(self) -> None:
        """Ask the gateway to stop the job. Keep iterating: the stream ends with an
        ``EndEvent`` whose ``finish_reason`` is ``"cancelled"`` (or with the answer, if it
        was already complete). Before the gateway has named the job, the request is sent as
        soon as it does."""
        job_id = self._follow.cancel_target()
        if job_id is not None:
            self._client.cancel(job_id)

    def _run(self) -> Generator[Event, None, None]:
        follow = self._follow
        while True:
            try:
                yield from self._connection(follow.next_request())
                if follow.finished:
                    return
                cut: Exception = follow.closed_early()
            except (httpx2.TransportError, StreamCut, ChatstreamError) as e:
                cut = e
            reconnecting = follow.interrupted(cut)
            yield reconnecting
            time.sleep(reconnecting.delay_s)

    def _connection(self, request: HttpRequest) -> Iterator[Event]:
        config = self._client.config
        with self._client.http.stream(
            request.method,
            config.url(request.path),
            json=request.json,
            params=request.params,
            headers=config.headers(request.headers, stream=True),
        ) as response:
            body = response.read() if response.is_error else b""
            self._follow.response_started(response.status_code, response.headers, body)
            if (job_id := self._follow.pending_cancel()) is not None:
                self._client.cancel(job_id)
            for chunk in response.iter_bytes():
                yield from self._follow.feed(chunk)
                if self._follow.finished:
                    return


class ChatstreamClient:
    """The gateway's API for blocking code.

    >>> with ChatstreamClient("http://127.0.0.1:8080", api_key="k1") as client:
    ...     for event in client.chat("How does resuming work?"):
    ...         ...

    ``api_key`` is a static key or a JWT, sent as a bearer token. ``heartbeat_timeout_s`` is
    how long a stream may stay silent (heartbeats included) before it counts as dropped.
    Pass ``http`` to bring your own ``httpx2.Client`` (proxies, TLS); it is not closed."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        heartbeat_timeout_s: float = 45.0,
        backoff: Backoff | None = None,
        http: httpx2.Client | None = None,
    ) -> None:
        self.config = ClientConfig(base_url, api_key, heartbeat_timeout_s, backoff or Backoff())
        self._owns_http = http is None
        self.http = http or httpx2.Client(timeout=self.config.timeout())

    def __enter__(self) -> ChatstreamClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    # Streams

    def chat(
        self,
        text: str,
        *,
        session_id: str | None = None,
        project: str | None = None,
        pipeline: str | None = None,
    ) -> EventStream:
        """Ask ``text`` in ``session_id`` (default: a new session, whose id the stream's
        ``session_id`` gives), answered from the knowledge collection ``project`` if given."""
        return self._stream(self.config.follow(calls.chat(text, session_id, project, pipeline)))

    def send_message(
        self,
        session_id: str,
        content: str,
        *,
        pipeline: str | None = None,
        simple_language: bool = False,
    ) -> EventStream:
        """Send a message into an existing session and stream the answer."""
        request = calls.send_message(session_id, content, pipeline, simple_language)
        return self._stream(self.config.follow(request))

    def resume(
        self, job_id: str, last_event_id: int = 0, *, ticket: str | None = None
    ) -> EventStream:
        """Attach to a job: every event after ``last_event_id`` (0: from the first), then the
        live ones. With ``ticket`` (from ``create_ticket``), a client without an API key may
        attach."""
        follow = self.config.follow(None, job_id=job_id, last_event_id=last_event_id, ticket=ticket)
        return self._stream(follow)

    def cancel(self, job_id: str) -> bool:
        """Stop a job. True when it is being stopped; False when it had already ended."""
        return self._call(calls.cancel(job_id))

    def create_ticket(self, job_id: str) -> Ticket:
        """A ticket that opens this job's stream without the API key, until it expires."""
        return self._call(calls.create_ticket(job_id))

    # Sessions

    def create_session(self, title: str | None = None, *, session_id: str | None = None) -> Session:
        """A new session; with ``session_id`` (digits or a UUID), that one, or the caller's
        own session of that id if it exists."""
        return self._call(calls.create_session(title, session_id))

    def list_sessions(self, limit: int = 20, cursor: str | None = None) -> SessionPage:
        return self._call(calls.list_sessions(limit, cursor))

    def get_session(self, session_id: str) -> Session:
        return self._call(calls.get_session(session_id))

    def rename_session(self, session_id: str, title: str) -> Session:
        return self._call(calls.rename_session(session_id, title))

    def delete_session(self, session_id: str) -> None:
        """Delete a session, its messages, and stop its running job."""
        self._call(calls.delete_session(session_id))

    def messages(self, session_id: str) -> tuple[Message, ...]:
        """A session's messages, oldest first."""
        return self._call(calls.messages(session_id))

    # Knowledge collections

    def add_document(
        self, project: str, name: str, content: str, *, format: str = "markdown"
    ) -> Document:
        return self._call(calls.add_document(project, name, content, format))

    def list_documents(self, project: str) -> tuple[Document, ...]:
        return self._call(calls.list_documents(project))

    def delete_document(self, project: str, document_id: str) -> None:
        self._call(calls.delete_document(project, document_id))

    def _stream(self, follow: Follow) -> EventStream:
        return EventStream(self, follow)

    def _call(self, call: calls.Call[T]) -> T:
        request = call.request
        try:
            response = self.http.request(
                request.method,
                self.config.url(request.path),
                json=request.json,
                params=request.params,
                headers=self.config.headers(request.headers),
            )
        except httpx2.TransportError as e:
            raise unreachable(e) from e
        return call.result(
            response.status_code, response.headers.get("retry-after"), response.content
        )
