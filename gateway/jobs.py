"""One chat turn, whatever route it came in by: resolve the session, store the user's message
and the assistant's placeholder, then subscribe, send the job and stream it. Every streaming
route is a thin mapping onto :func:`stream_turn`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway import appkeys, sse
from gateway.auth import user_of
from gateway.errors import not_found
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
from shared.messages import Turn
from shared.sessions import Session, new_session, owned_session
from shared.wire import Job

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
    takes the stream's lease first, in the same round trip where there is one, so a refused
    stream (429) stores nothing."""
    app = request.app
    sessions, leases = app[appkeys.SESSIONS], app[appkeys.STREAM_LEASES]
    user_id, lease_id = user_of(request), request[appkeys.REQUEST_ID]
    if session_id is None:
        if lease:
            await leases.acquire(user_id, lease_id)
        return new_session(user_id, " ".join(text.split())[:AUTO_TITLE_CHARS]), True
    async with app[appkeys.REDIS].pipeline(transaction=False) as pipe:
        sessions.stage_get(pipe, session_id)
        if lease:
            leases.stage_acquire(pipe, user_id, lease_id)
        fields, *granted = await pipe.execute()
    existing = owned_session(user_id, fields)
    if existing is None:
        if granted and granted[0]:
            await release_stream_lease(request)
        raise not_found("session")
    if granted:
        leases.check_granted(granted[0])
    return existing, False


@dataclass(frozen=True, slots=True)
class StartedTurn:
    """A stored turn and its job, ready to be sent once the caller is subscribed."""

    job: Job
    submit: Callable[[], Awaitable[None]]


async def start_turn(request: web.Request, turn: TurnRequest, *, lease: bool) -> StartedTurn:
    """Store the turn's messages (and its new session) in one transaction and build its job
    (not yet sent). With ``lease``, the stream's lease is taken before anything is stored
    (see :func:`resolve_session`) and given back if storing fails."""
    session, new = await resolve_session(request, turn.session_id, turn.text, lease=lease)
    job = _build_job(request, session.id, turn)
    app = request.app
    messages = app[appkeys.MESSAGES]
    publisher = app[appkeys.JOB_PUBLISHER]
    stored = Turn(
        session_id=session.id,
        user_id=job.user_id,
        job_id=job.job_id,
        user_message_id=new_id(),
        assistant_message_id=job.message_id,
        text=turn.text,
    )
    try:
        async with app[appkeys.REDIS].pipeline(transaction=True) as pipe:
            if new:
                app[appkeys.SESSIONS].stage_create(pipe, session)
            messages.stage_turn(pipe, stored)
            await pipe.execute()
    except BaseException:
        if lease:
            await release_stream_lease(request)
        raise

    async def submit() -> None:
        try:
            await publisher.publish(job)
        except QueueUnavailableError:
            # The job never left: its answer is an error, not forever streaming.
            await messages.abandon_turn(stored)
            raise

    return StartedTurn(job, submit)


async def stream_turn(request: web.Request, turn: TurnRequest) -> web.StreamResponse:
    # The turn's set-up runs in a frame of its own, so the stream's long-lived frame holds none
    # of it (the stored turn, the job, the snapshot).
    return await stream_job(request, await _turn_stream(request, turn))


async def _turn_stream(request: web.Request, turn: TurnRequest) -> StreamRequest:
    started = await start_turn(request, turn, lease=True)
    job = started.job
    try:
        opening = await _snapshot_frame(request, job.session_id) if turn.snapshot else b""
    except BaseException:
        await release_stream_lease(request)
        raise
    return StreamRequest(
        job_id=job.job_id,
        session_id=job.session_id,
        message_id=job.message_id,
        opening=opening,
        submit=started.submit,
        encoding=turn.encoding,
        lease_held=True,
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


async def _snapshot_frame(request: web.Request, session_id: str) -> bytes:
    session = await request.app[appkeys.SESSIONS].get(user_of(request), session_id)
    stored = await request.app[appkeys.MESSAGES].of_session(session_id)
    payload = {
        "type": events.SNAPSHOT,
        "session": session.to_json() if session else None,
        "messages": [message.to_json() for message in stored],
    }
    return sse.named_frame(events.SNAPSHOT, sse.json_line(payload))
