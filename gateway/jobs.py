"""One chat turn, whatever route it came in by: store the user's message and the assistant's
placeholder (and a new session) once the request's checks allow, then subscribe, send the job
and stream it. Every streaming route is a thin mapping onto :func:`stream_turn`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.auth import user_of
from gateway.errors import ApiError, not_found
from gateway.guarded_writes import Guard, SessionOwner, Verdict, hash_reply, write_if_allowed
from gateway.relay import (
    SSE_ENCODING,
    Encoding,
    StreamRequest,
    stream_job,
)
from shared import events, sse
from shared.ids import new_id
from shared.job import Job
from shared.jobqueue import QueueUnavailableError
from shared.logging import get_logger
from shared.messages import Message, Turn
from shared.sessions import Session, new_session, owned_session

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
    """Store the turn's messages (and its new session) and build its job (not yet sent)."""
    pending = _pending_turn(request, turn)
    await pending.store(request, conversation=False, lease_id=None)
    return StartedTurn(pending.job, pending.submit)


async def stream_turn(request: web.Request, turn: TurnRequest) -> web.StreamResponse:
    # The turn's set-up runs in a frame of its own, so the stream's long-lived frame holds none
    # of it (the stored turn, the job, the snapshot).
    return await stream_job(request, _turn_stream(request, turn))


def _turn_stream(request: web.Request, turn: TurnRequest) -> StreamRequest:
    # The turn is stored by the stream, while it subscribes, in the round trip that takes the
    # stream's lease: a refused stream (429) stores nothing.
    pending = _pending_turn(request, turn)
    job = pending.job
    lease_id = new_id()

    async def store() -> bytes:
        conversation = await pending.store(request, conversation=turn.snapshot, lease_id=lease_id)
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
        lease_id=lease_id,
    )


def _pending_turn(request: web.Request, turn: TurnRequest) -> _PendingTurn:
    user_id = user_of(request)
    # A new session is titled after its first message.
    session = (
        new_session(user_id, " ".join(turn.text.split())[:AUTO_TITLE_CHARS])
        if turn.session_id is None
        else None
    )
    session_id = session.id if session is not None else turn.session_id
    assert session_id is not None
    job = _build_job(request, session_id, turn)
    stored = Turn(
        session_id=session_id,
        user_id=job.user_id,
        job_id=job.job_id,
        user_message_id=new_id(),
        assistant_message_id=job.message_id,
        text=turn.text,
    )
    return _PendingTurn(request.app, session, job, stored)


@dataclass(frozen=True, slots=True)
class _PendingTurn:
    """A turn whose job is built, not stored yet."""

    app: web.Application
    # The new session the turn opens; None for a turn in an existing session.
    session: Session | None
    job: Job
    stored: Turn

    async def store(
        self, request: web.Request, *, conversation: bool, lease_id: str | None
    ) -> Conversation | None:
        """Store the turn's messages (and its new session), if the request's checks allow:
        its rate-limit hit (when the middleware left it to the turn), its session's owner and,
        with ``lease_id``, the stream's lease, judged in that order, all in one round trip; a
        refusal raises its API error and writes nothing. With ``conversation``, also return the
        conversation as the turn left it: read back in the same round trip, or for a new
        session, just what was written."""
        app, session, stored = self.app, self.session, self.stored
        sessions, messages = app[appkeys.SESSIONS], app[appkeys.MESSAGES]
        names = app[appkeys.SETTINGS].connections.names
        user_id = stored.user_id
        read_back = conversation and session is None
        # A new session needs no check: its id is new.
        owner = None if session else SessionOwner(names.session(stored.session_id), user_id)
        guard = Guard(
            rate=(
                app[appkeys.RATE_LIMITER].new_hit(user_id)
                if request.pop(appkeys.RATE_HIT_DUE, False)
                else None
            ),
            session=owner,
            lease=(
                app[appkeys.STREAM_LEASES].claim(user_id, lease_id)
                if lease_id is not None
                else None
            ),
        )

        def stage(pipe: Pipeline) -> None:
            if session is not None:
                sessions.stage_create(pipe, session)
            messages.stage_turn(pipe, stored)
            if read_back:
                sessions.stage_get(pipe, stored.session_id)
                messages.stage_list(pipe, stored.session_id)

        outcome = await write_if_allowed(app[appkeys.REDIS], guard, stage)
        if outcome.verdict is not Verdict.WRITTEN:
            raise self._refusal(outcome.verdict, guard)
        if read_back:
            fields, listed = outcome.replies[-2:]
            owned = owned_session(user_id, hash_reply(fields))
            return Conversation(owned, await messages.read(listed))
        if not conversation:
            return None
        assert session is not None
        # What stage_create and stage_turn just wrote, and nothing else: the id is new.
        grown = dataclasses.replace(
            session, message_count=session.message_count + 2, updated_at=stored.created_at
        )
        return Conversation(grown, stored.messages())

    def _refusal(self, verdict: Verdict, guard: Guard) -> ApiError:
        if verdict is Verdict.RATE_LIMITED and guard.rate is not None:
            return guard.rate.refusal()
        if verdict is Verdict.NO_SESSION:
            return not_found("session")
        if verdict is Verdict.NO_LEASE:
            return self.app[appkeys.STREAM_LEASES].refusal()
        raise AssertionError(f"no refusal for {verdict}")

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
