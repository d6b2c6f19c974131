"""One chat turn, whatever route it came in by, as an object with named steps.

1. :meth:`Turn.read`: a turn route reads its request into a :class:`TurnRequest`. The route's
   rate-limit hit is the turn's to take (the middleware leaves it): with the writes when the
   turn gets that far, alone when the request is refused before.
2. :meth:`Turn.store`: ONE round trip to Redis (gateway/guarded_writes.py) takes the rate-limit
   hit, checks that the session is the caller's and takes the job's lease (one of the user's
   ``MAX_STREAMS_PER_USER`` slots, whatever the route), and only if all three allow, writes the
   user's message, the assistant's placeholder (and a new session). A refused turn writes
   nothing; no turn is stored without a lease.
3. :meth:`Turn.submit`: sends the job, once the caller listens for its events, so that none is
   missed.
4. :meth:`Turn.abandon`: a stored turn whose job will never be sent gets an error for an answer,
   rather than one that streams forever.

A streaming route hands its turn to the relay (:func:`stream_turn`), which runs steps 2 and 3
around its subscription; the non-streaming completion runs them itself
(gateway/final_event.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.auth import user_of
from gateway.errors import ApiError, not_found
from gateway.guarded_writes import Guard, SessionEntry, Verdict, write_if_allowed
from gateway.limits import RateHit
from gateway.relay import SSE_ENCODING, Encoding, StreamRequest, stream_job
from shared import events, sse, tracing
from shared.ids import new_job_id, new_scoped_id
from shared.job import Job
from shared.jobqueue import QueueUnavailableError
from shared.logging import get_logger
from shared.messages import Message, StoredTurn
from shared.redis_client import RedisPipeline, hash_reply
from shared.sessions import Session, new_session, owned_session

log = get_logger(__name__)

AUTO_TITLE_CHARS = 60


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What a route's request asks for."""

    text: str
    pipeline: str | None
    session_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Seed 004's front end expects the conversation as a named `snapshot` event first.
    snapshot: bool = False
    encoding: Encoding = SSE_ENCODING


@dataclass(frozen=True, slots=True)
class Conversation:
    session: Session | None
    messages: list[Message]


@dataclass(frozen=True, slots=True)
class Turn:
    """A turn whose job is built, not stored yet."""

    app: web.Application
    # The new session the turn opens; None for a turn in an existing session.
    session: Session | None
    job: Job
    stored: StoredTurn
    # The request's rate-limit hit, taken with the writes; None where the middleware took it.
    rate_hit: RateHit | None = None
    snapshot: bool = False
    encoding: Encoding = SSE_ENCODING

    @classmethod
    async def read(
        cls, request: web.Request, read: Callable[[web.Request], Awaitable[TurnRequest]]
    ) -> Turn:
        """The turn that a turn route's request asks for (``read`` parses it), carrying the
        request's rate-limit hit to :meth:`store`. A request refused before (a 422, say) takes
        the hit alone: it still counts, and a caller over the limit gets 429 instead."""
        limiter = request.app[appkeys.RATE_LIMITER]
        try:
            asked = await read(request)
        except ConnectionResetError:
            # The client went away mid-request: there is nobody to answer.
            raise
        except Exception:
            await limiter.hit(user_of(request))
            raise
        return cls.of(request, asked, rate_hit=limiter.new_hit(user_of(request)))

    @classmethod
    def of(cls, request: web.Request, asked: TurnRequest, rate_hit: RateHit | None = None) -> Turn:
        """The turn ``asked`` for: its job built, and a new session when it names none."""
        user_id = user_of(request)
        # A new session is titled after its first message.
        session = (
            new_session(user_id, " ".join(asked.text.split())[:AUTO_TITLE_CHARS])
            if asked.session_id is None
            else None
        )
        session_id = session.id if session is not None else asked.session_id
        assert session_id is not None
        job = _build_job(request, session_id, asked)
        stored = StoredTurn(
            session_id=session_id,
            user_id=job.user_id,
            job_id=job.job_id,
            user_message_id=new_scoped_id(session_id),
            assistant_message_id=job.message_id,
            text=asked.text,
            traceparent=tracing.current_traceparent(),
        )
        return cls(request.app, session, job, stored, rate_hit, asked.snapshot, asked.encoding)

    def stream_request(self) -> StreamRequest:
        """What the turn's stream streams: its job, from the first event."""
        job = self.job
        return StreamRequest(
            job_id=job.job_id,
            session_id=job.session_id,
            message_id=job.message_id,
            encoding=self.encoding,
        )

    async def store(self, lease_id: str) -> bytes:
        """Store the turn's messages (and its new session) if its checks allow: its rate-limit
        hit, the lease ``lease_id`` of its job and its session's owner, judged in that order
        (gateway/guarded_writes.py). A refusal raises its API error and writes nothing. The caller
        holds the lease while it waits on the job, and releases it. Returns its stream's
        opening: the conversation as the turn left it, as a `snapshot` event, when the route
        asked for one; else nothing."""
        conversation = await self._write(lease_id)
        return _snapshot_frame(conversation) if conversation is not None else b""

    async def _write(self, lease_id: str) -> Conversation | None:
        app, session, stored = self.app, self.session, self.stored
        sessions, messages = app[appkeys.SESSIONS], app[appkeys.MESSAGES]
        names = app[appkeys.SETTINGS].connections.names
        user_id = stored.user_id
        # An existing session's conversation is read back in the same round trip; a new one's
        # is just what is written.
        read_back = self.snapshot and session is None
        guard = Guard(
            user_id=user_id,
            session=SessionEntry(
                key=names.session(stored.session_id),
                session_id=stored.session_id,
                index_key=names.user_sessions(user_id),
                score_ms=stored.created_at_ms,
                # A new session needs no owner check: its id is new.
                new=session is not None,
            ),
            rate=self.rate_hit,
            lease=app[appkeys.STREAM_LEASES].claim(user_id, lease_id),
        )

        def stage(pipe: RedisPipeline) -> None:
            if session is not None:
                sessions.stage_create(pipe, session)
            messages.stage_turn(pipe, stored)
            if read_back:
                sessions.stage_get(pipe, stored.session_id)
                messages.stage_list(pipe, stored.session_id)

        with tracing.span("turn store"):
            outcome = await write_if_allowed(app[appkeys.REDIS], guard, stage)
        if outcome.verdict is not Verdict.WRITTEN:
            raise self._refusal(outcome.verdict)
        if read_back:
            fields, listed = outcome.replies[-2:]
            owned = owned_session(user_id, hash_reply(fields))
            return Conversation(owned, await messages.read(listed))
        if not self.snapshot:
            return None
        assert session is not None
        # What stage_create and stage_turn just wrote, and nothing else: the id is new.
        grown = dataclasses.replace(
            session, message_count=session.message_count + 2, updated_at=stored.created_at
        )
        return Conversation(grown, stored.messages())

    def _refusal(self, verdict: Verdict) -> ApiError:
        if verdict is Verdict.RATE_LIMITED and self.rate_hit is not None:
            return self.rate_hit.refusal()
        if verdict is Verdict.NO_SESSION:
            return not_found("session")
        if verdict is Verdict.NO_LEASE:
            return self.app[appkeys.STREAM_LEASES].refusal()
        raise AssertionError(f"no refusal for {verdict}")

    async def submit(self) -> None:
        """Send the stored turn's job; one the queue does not take is abandoned."""
        try:
            await self.app[appkeys.JOB_PUBLISHER].publish(self.job)
        except QueueUnavailableError:
            await self.abandon()
            raise

    async def abandon(self) -> None:
        """The stored turn's job will never be sent: its answer is an error, not forever
        streaming. When Redis cannot take that either (both servers failing at once), the
        caller's own error still stands and the failure is logged; the message stays
        ``streaming`` until a stream of its job ends it as stalled."""
        try:
            await self.app[appkeys.MESSAGES].abandon_turn(self.stored)
        except RedisError as e:
            log.warning(
                "turn.abandon_failed",
                job_id=self.job.job_id,
                message_id=self.stored.assistant_message_id,
                error=repr(e),
            )


def stream_turn(request: web.Request, turn: Turn) -> Awaitable[web.StreamResponse]:
    """Stream ``turn``: stored while the stream subscribes, its job sent once it has. A plain
    function, not a coroutine: the relay lets go of the turn once the stream is open, and a
    coroutine here would hold it for as long as the stream lives."""
    return stream_job(request, turn.stream_request(), starts=turn)


def _build_job(request: web.Request, session_id: str, asked: TurnRequest) -> Job:
    settings = request.app[appkeys.SETTINGS]
    return Job(
        job_id=new_job_id(session_id, in_session_slot=settings.connections.names.hash_tags),
        session_id=session_id,
        message_id=new_scoped_id(session_id),
        user_id=user_of(request),
        pipeline=asked.pipeline or settings.default_pipeline,
        text=asked.text,
        request_id=request[appkeys.REQUEST_ID],
        options=asked.options,
        created_at_ms=int(time.time() * 1000),
    )


def _snapshot_frame(conversation: Conversation) -> bytes:
    session = conversation.session
    payload = {
        "type": events.SNAPSHOT,
        "session": session.to_json() if session else None,
        "messages": [message.to_json() for message in conversation.messages],
    }
    return sse.named_frame(events.SNAPSHOT, sse.json_line(payload))
