"""One chat turn, whatever route it came in by: resolve the session, store the user's message
and the assistant's placeholder, then subscribe, send the job and stream it. Every streaming
route is a thin mapping onto :func:`stream_turn`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys, sse
from gateway.auth import user_of
from gateway.errors import ApiError, not_found
from gateway.limits import RateHit
from gateway.relay import (
    SSE_ENCODING,
    Encoding,
    StreamRequest,
    release_stream_lease,
    stream_job,
)
from shared import events
from shared.ids import new_id
from shared.jobqueue import QueueUnavailableError
from shared.logging import get_logger
from shared.messages import Message, Turn
from shared.sessions import Session, new_session, owned_session
from shared.wire import Job

log = get_logger(__name__)

AUTO_TITLE_CHARS = 60


@dataclass(frozen=True, slots=True)
class TurnRequest:
    text: str
    pipeline: str | None
    session_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Seed 004's front end expects the conversation as a named `snapshot` event first.
    snapshot: bool = False
    encoding: Encoding = SSE_ENCODING


async def resolve_session(
    request: web.Request, session_id: str | None, text: str, *, lease: bool
) -> tuple[Session, bool]:
    """The caller's session ``session_id``, or a new one titled after the message when None
    (not stored yet: it is stored with the turn). Returns (session, new). With ``lease``, also
    takes the stream's lease first, so a refused stream (429) stores nothing. One round trip
    holds the request's rate-limit hit (when the middleware left it to this one), the session
    lookup and the lease; they are judged in that order."""
    app = request.app
    user_id, lease_id = user_of(request), request[appkeys.REQUEST_ID]
    leases = app[appkeys.STREAM_LEASES]
    hit: RateHit | None = None
    async with app[appkeys.REDIS].pipeline(transaction=False) as pipe:
        if request.pop(appkeys.RATE_HIT_DUE, False):
            hit = app[appkeys.RATE_LIMITER].stage_hit(pipe, user_id)
        if session_id is not None:
            app[appkeys.SESSIONS].stage_get(pipe, session_id)
        if lease:
            leases.stage_acquire(pipe, user_id, lease_id)
        replies = iter(await pipe.execute())
    if hit is not None:
        count, _ = next(replies), next(replies)  # the window's count, its expiry
    fields = next(replies) if session_id is not None else None
    granted = bool(next(replies)) if lease else False
    try:
        if hit is not None:
            hit.check(count)
        if session_id is None:
            session = new_session(user_id, " ".join(text.split())[:AUTO_TITLE_CHARS])
        else:
            existing = owned_session(user_id, fields)
            if existing is None:
                raise not_found("session")
            session = existing
        if lease:
            leases.check_granted(granted)
    except ApiError:
        if granted:
            await release_stream_lease(request)
        raise
    return session, session_id is None


@dataclass(frozen=True, slots=True)
class StartedTurn:
    """A stored turn and its job, ready to be sent once the caller is subscribed."""

    job: Job
    submit: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Conversation:
    session: Session | None
    messages: list[Message]


async def start_turn(request: web.Request, turn: TurnRequest) -> StartedTurn:
    """Store the turn's messages (and its new session) in one transaction and build its job
    (not yet sent)."""
    pending = await _resolve_turn(request, turn, lease=False)
    await pending.store(conversation=False)
    return StartedTurn(pending.job, pending.submit)


async def stream_turn(request: web.Request, turn: TurnRequest) -> web.StreamResponse:
    # The turn's set-up runs in a frame of its own, so the stream's long-lived frame holds none
    # of it (the stored turn, the job, the snapshot).
    return await stream_job(request, await _turn_stream(request, turn))


async def _turn_stream(request: web.Request, turn: TurnRequest) -> StreamRequest:
    # The lease is taken before anything is stored, so a refused stream (429) stores nothing;
    # the turn is stored by the stream, while it subscribes.
    pending = await _resolve_turn(request, turn, lease=True)
    job = pending.job

    async def store() -> bytes:
        conversation = await pending.store(conversation=turn.snapshot)
        return _snapshot_frame(conversation) if conversation is not None else b""

    return StreamRequest(
        job_id=job.job_id,
        session_id=job.session_id,
        message_id=job.message_id,
        store=store,
        submit=pending.submit,
        abandon=pending.abandon,
        encoding=turn.encoding,
        lease_held=True,
    )


async def _resolve_turn(request: web.Request, turn: TurnRequest, *, lease: bool) -> _PendingTurn:
    session, new = await resolve_session(request, turn.session_id, turn.text, lease=lease)
    job = _build_job(request, session.id, turn)
    stored = Turn(
        session_id=session.id,
        user_id=job.user_id,
        job_id=job.job_id,
        user_message_id=new_id(),
        assistant_message_id=job.message_id,
        text=turn.text,
    )
    return _PendingTurn(request.app, session, new, job, stored)


@dataclass(frozen=True, slots=True)
class _PendingTurn:
    """A turn whose session is resolved and whose job is built, not stored yet."""

    app: web.Application
    session: Session
    # The session is new: it is created with the turn.
    new: bool
    job: Job
    stored: Turn

    async def store(self, *, conversation: bool) -> Conversation | None:
        """Store the turn's messages (and its new session) in one transaction. With
        ``conversation``, also return the conversation as the turn left it: read back in the
        same transaction, or for a new session, just what was written."""
        app, session, stored = self.app, self.session, self.stored
        sessions, messages = app[appkeys.SESSIONS], app[appkeys.MESSAGES]
        read_back = conversation and not self.new
        async with app[appkeys.REDIS].pipeline(transaction=True) as pipe:
            if self.new:
                sessions.stage_create(pipe, session)
            messages.stage_turn(pipe, stored)
            if read_back:
                sessions.stage_get(pipe, session.id)
                messages.stage_list(pipe, session.id)
            replies = await pipe.execute()
        if read_back:
            fields, listed = replies[-2:]
            return Conversation(owned_session(stored.user_id, fields), await messages.read(listed))
        if not conversation:
            return None
        # What stage_create and stage_turn just wrote, and nothing else: the id is new.
        grown = dataclasses.replace(
            session, message_count=session.message_count + 2, updated_at=stored.created_at
        )
        return Conversation(grown, stored.messages())

    async def submit(self) -> None:
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


def _build_job(request: web.Request, session_id: str, turn: TurnRequest) -> Job:
    settings = request.app[appkeys.SETTINGS]
    return Job(
        job_id=new_id(),
        session_id=session_id,
        message_id=new_id(),
        user_id=user_of(request),
        pipeline=turn.pipeline or settings.default_pipeline,
        text=turn.text,
        request_id=request[appkeys.REQUEST_ID],
        options=turn.options,
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
