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
from gateway.relay import SSE_ENCODING, Encoding, StreamRequest, stream_job
from shared import events
from shared.ids import new_id
from shared.jobqueue import QueueUnavailableError
from shared.messages import Turn
from shared.sessions import Session
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


async def resolve_session(request: web.Request, session_id: str | None, text: str) -> Session:
    """The caller's session ``session_id``, or a new one titled after the message when None."""
    sessions = request.app[appkeys.SESSIONS]
    user_id = user_of(request)
    if session_id is None:
        title = " ".join(text.split())[:AUTO_TITLE_CHARS]
        session, _ = await sessions.create(user_id, None, title)
        return session
    existing = await sessions.get(user_id, session_id)
    if existing is None:
        raise not_found("session")
    return existing


@dataclass(frozen=True, slots=True)
class StartedTurn:
    """A stored turn and its job, ready to be sent once the caller is subscribed."""

    job: Job
    submit: Callable[[], Awaitable[None]]


async def start_turn(request: web.Request, turn: TurnRequest) -> StartedTurn:
    """Store the turn's messages and build its job (not yet sent)."""
    session = await resolve_session(request, turn.session_id, turn.text)
    job = _build_job(request, session.id, turn)
    messages = request.app[appkeys.MESSAGES]
    publisher = request.app[appkeys.JOB_PUBLISHER]
    stored = Turn(
        session_id=session.id,
        user_id=job.user_id,
        job_id=job.job_id,
        user_message_id=new_id(),
        assistant_message_id=job.message_id,
        text=turn.text,
    )
    await messages.store_turn(stored)

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
    started = await start_turn(request, turn)
    job = started.job
    opening = await _snapshot_frame(request, job.session_id) if turn.snapshot else b""
    return StreamRequest(
        job_id=job.job_id,
        session_id=job.session_id,
        message_id=job.message_id,
        opening=opening,
        submit=started.submit,
        encoding=turn.encoding,
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
