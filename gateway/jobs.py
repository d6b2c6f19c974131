"""One chat turn, whatever route it came in by: resolve the session, store the user's message
and the assistant's placeholder, then subscribe, send the job and stream it. Every streaming
route is a thin mapping onto :func:`stream_turn`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway import appkeys, sse
from gateway.auth import user_of
from gateway.errors import not_found
from gateway.relay import SSE_ENCODING, Encoding, StreamRequest, stream_job
from shared import events
from shared.ids import new_id
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


async def start_turn(request: web.Request, turn: TurnRequest) -> Job:
    """Store the turn's messages and build its job (not yet sent)."""
    session = await resolve_session(request, turn.session_id, turn.text)
    job = _build_job(request, session.id, turn)
    messages = request.app[appkeys.MESSAGES]
    await messages.store_turn(
        Turn(
            session_id=session.id,
            user_id=job.user_id,
            job_id=job.job_id,
            user_message_id=new_id(),
            assistant_message_id=job.message_id,
            text=turn.text,
        )
    )
    return job


async def stream_turn(request: web.Request, turn: TurnRequest) -> web.StreamResponse:
    job = await start_turn(request, turn)
    opening = await _snapshot_frame(request, job.session_id) if turn.snapshot else b""
    publisher = request.app[appkeys.JOB_PUBLISHER]

    async def submit() -> None:
        await publisher.publish(job)

    return await stream_job(
        request,
        StreamRequest(
            job_id=job.job_id,
            session_id=job.session_id,
            opening=opening,
            submit=submit,
            encoding=turn.encoding,
        ),
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
