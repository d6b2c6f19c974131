"""Following one answer's stream across connections, without doing any I/O itself: the async
and the sync stream run the same ``Follow``, each with its own HTTP calls.

The first request is the one that starts the job (or, to attach, the first resume); every later
one is ``GET /api/v1/streams/{jobId}`` with ``Last-Event-ID``, after a jittered exponential
backoff. Events at or below the last seq seen are dropped, so the caller sees each event once,
whatever the connections did."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chatstream_client.errors import (
    ChatstreamError,
    StreamCut,
    error_from_response,
    unreachable,
)
from chatstream_client.events import (
    TERMINAL,
    ErrorEvent,
    Event,
    Reconnecting,
    StartEvent,
    decode_event,
)
from chatstream_client.sse import SseDecoder

# Error events after which the contract says to resume (docs/api.md, "Events").
RESUMABLE_ERRORS = frozenset({"slow_client", "unavailable"})


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before each resume: exponential from the gateway's ``retry:`` (or
    ``initial_s`` before it sent one), capped at ``max_s``; a Retry-After wins. After
    ``max_attempts`` failed tries in a row the stream raises."""

    initial_s: float = 0.5
    max_s: float = 10.0
    max_attempts: int = 8

    def delay_s(self, attempt: int, initial_s: float | None = None) -> float:
        """Equal jitter: half the step is fixed, half random, so that the clients of one lost
        server do not all come back at once."""
        first = self.initial_s if initial_s is None else initial_s
        step = min(self.max_s, first * 2.0 ** max(0, attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def path_segment(value: str) -> str:
    return quote(value, safe="")


class Follow:
    """One answer's stream: which request to make next, the events each connection's bytes
    hold, and, after a cut, whether and when to resume."""

    def __init__(
        self,
        opening: HttpRequest | None,
        *,
        job_id: str | None = None,
        last_event_id: int = 0,
        ticket: str | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if opening is None and job_id is None:
            raise ValueError("a stream needs a request that starts a job, or a job id")
        self._opening = opening
        self.job_id = job_id
        self.session_id: str | None = None
        self.last_event_id = last_event_id
        self.finished = False
        self._ticket = ticket
        self._backoff = backoff or Backoff()
        self._attempt = 0
        self._decoder = SseDecoder()
        # The gateway's ``retry:``, which each stream opens with: the backoff's first step.
        self._retry_ms: int | None = None
        self._cut: StreamCut | None = None
        self._cancel_pending = False

    def next_request(self) -> HttpRequest:
        """The request of the next connection: the opening one once, then resumes."""
        self._decoder = SseDecoder()
        self._cut = None
        if self._opening is not None:
            opening, self._opening = self._opening, None
            return opening
        assert self.job_id is not None
        return HttpRequest(
            "GET",
            f"/api/v1/streams/{path_segment(self.job_id)}",
            params={"ticket": self._ticket} if self._ticket else {},
            headers={"Last-Event-ID": str(self.last_event_id)},
        )

    def response_started(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """Check a connection's status and headers (``body`` is read only for an error)."""
        if status >= 400:
            raise error_from_response(status, headers.get("retry-after"), body)
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "text/event-stream":
            raise ChatstreamError(status, "not_a_stream", f"the gateway answered {content_type}")
        self.job_id = headers.get("x-job-id") or self.job_id
        self.session_id = headers.get("x-session-id") or self.session_id

    def feed(self, chunk: bytes) -> list[Event]:
        """The new events in a connection's next bytes; none after the final one. After an
        error event that asks the client to resume, the next call raises StreamCut."""
        if self._cut is not None:
            raise self._cut
        events: list[Event] = []
        for message in self._decoder.feed(chunk):
            if self.finished or self._cut is not None:
                break
            seq = int(message.id) if message.id is not None and message.id.isdigit() else None
            if seq is not None and seq <= self.last_event_id:
                continue  # Seen on an earlier connection.
            event = decode_event(message.data, seq)
            if isinstance(event, ErrorEvent) and event.code in RESUMABLE_ERRORS:
                # Not raised here: the events before it in this chunk still go out.
                self._cut = StreamCut(f"{event.message} ({event.code})")
                break
            if seq is not None:
                self.last_event_id = seq
            if isinstance(event, StartEvent):
                self.job_id, self.session_id = event.job_id, event.session_id
            self.finished = isinstance(event, TERMINAL)
            self._attempt = 0
            events.append(event)
        self._retry_ms = self._decoder.retry_ms or self._retry_ms
        return events

    def cancel_target(self) -> str | None:
        """The job to cancel now; None before the gateway has named it, and then
        ``pending_cancel`` gives it as soon as it has."""
        self._cancel_pending = self.job_id is None
        return self.job_id

    def pending_cancel(self) -> str | None:
        """The job whose cancel was asked for before it was known, once it is, and only once."""
        if not self._cancel_pending or self.job_id is None:
            return None
        self._cancel_pending = False
        return self.job_id

    def closed_early(self) -> StreamCut:
        """Why a connection that ended before the final event did."""
        return self._cut or StreamCut("the stream closed before its end event")

    def interrupted(self, error: Exception) -> Reconnecting:
        """After a connection failed, was refused or closed early: the wait before resuming,
        or ``error`` raised when resuming cannot help."""
        if isinstance(error, ChatstreamError) and not error.retryable:
            raise error
        if self.job_id is None:
            # The job may never have started: sending the message again is the caller's call.
            if isinstance(error, ChatstreamError):
                raise error
            raise unreachable(error) from error
        self._attempt += 1
        if self._attempt > self._backoff.max_attempts:
            message = f"gave up after {self._attempt - 1} attempts to resume: {error}"
            raise ChatstreamError(0, "network", message) from error
        retry_after_s = error.retry_after_s if isinstance(error, ChatstreamError) else None
        server_s = None if self._retry_ms is None else self._retry_ms / 1000
        delay_s = retry_after_s or self._backoff.delay_s(self._attempt, server_s)
        return Reconnecting(self._attempt, delay_s, str(error) or type(error).__name__)


class FollowedStream:
    """What the async and the sync stream tell of the job they follow."""

    _follow: Follow

    @property
    def job_id(self) -> str | None:
        """The job's id, known once the gateway has answered."""
        return self._follow.job_id

    @property
    def session_id(self) -> str | None:
        """The session the answer goes into, known once the gateway has answered."""
        return self._follow.session_id

    @property
    def last_event_id(self) -> int:
        """The seq of the last event seen: what a later ``resume`` starts after."""
        return self._follow.last_event_id
