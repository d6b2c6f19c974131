"""Turning a validated chat message into a job and streaming it: what every streaming route
shares, so that a route is only a mapping from its request shape to these calls."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from gateway import appkeys
from gateway.auth import user_of
from gateway.relay import StreamRequest, stream_job
from shared.wire import Job


def new_id() -> str:
    return uuid.uuid4().hex


def build_job(
    request: web.Request,
    *,
    session_id: str,
    text: str,
    pipeline: str | None,
    options: dict[str, Any] | None = None,
) -> Job:
    settings = request.app[appkeys.SETTINGS]
    return Job(
        job_id=new_id(),
        session_id=session_id,
        message_id=new_id(),
        user_id=user_of(request),
        pipeline=pipeline or settings.default_pipeline,
        text=text,
        request_id=request[appkeys.REQUEST_ID],
        options=options or {},
        created_at_ms=int(time.time() * 1000),
    )


async def stream_new_job(
    request: web.Request, job: Job, *, opening: bytes = b""
) -> web.StreamResponse:
    """Subscribe to the job's events, submit it, and stream it to the caller."""
    publisher = request.app[appkeys.JOB_PUBLISHER]

    async def submit() -> None:
        await publisher.publish(job)

    return await stream_job(
        request,
        StreamRequest(job_id=job.job_id, session_id=job.session_id, opening=opening, submit=submit),
    )
