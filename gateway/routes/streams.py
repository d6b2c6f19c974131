"""Attaching to a job's stream again (resume, other tabs), stream tickets, and the stop button."""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import BaseModel

from gateway import appkeys
from gateway.auth import user_of
from gateway.body import read_body
from gateway.errors import ApiError, validation_error
from gateway.job_meta import JobRecord, owned_job
from gateway.relay import SSE_HEADERS, StreamRequest, stream_job
from gateway.request_trace import link_to_job
from gateway.tickets import issue_ticket
from shared import events, replay_log, sse
from shared.messages import STATUS_CANCELLED

routes = web.RouteTableDef()

# ASCII digits only: str.isdigit() also admits "²" and other scripts' digits.
LAST_EVENT_ID = re.compile(r"[0-9]{1,18}")


class TicketBody(BaseModel):
    jobId: str


@routes.post("/api/v1/stream-tickets")
async def create_ticket(request: web.Request) -> web.Response:
    body = await read_body(request, TicketBody)
    user_id = user_of(request)
    await owned_job(request, body.jobId, user_id)
    settings = request.app[appkeys.SETTINGS]
    ticket = issue_ticket(
        request.app[appkeys.TICKET_SECRET], user_id, body.jobId, settings.stream_ticket_ttl_s
    )
    return web.json_response(
        {"ticket": ticket.token, "expiresAt": events.iso_from_epoch(ticket.expires_at)},
        status=201,
    )


@routes.get("/api/v1/streams/{job_id}", name="attach_stream", allow_head=False)
async def attach_stream(request: web.Request) -> web.StreamResponse:
    """Every event after Last-Event-ID (0 or none: from the first), then the live ones."""
    job = await owned_job(request, request.match_info["job_id"], user_of(request))
    after_seq = last_event_id(request)
    link_to_job(job, "stream resume", {"after_seq": after_seq})
    names = request.app[appkeys.SETTINGS].connections.names
    logged = await replay_log.bounds(request.app[appkeys.REDIS], names, job.job_id)
    if logged is None:
        if job.status != "queued":
            return await replay_window_passed(request, job)
    else:
        first_seq, last_seq = logged
        if after_seq + 1 < first_seq:
            return await replay_window_passed(request, job)
        if job.ended and after_seq >= last_seq:
            return await closed_stream(request, job)
    return await stream_job(
        request,
        StreamRequest(
            job_id=job.job_id,
            session_id=job.session_id,
            message_id=job.message_id,
            after_seq=after_seq,
        ),
    )


@routes.post("/api/v1/streams/{job_id}/cancel")
async def cancel_stream(request: web.Request) -> web.Response:
    job = await owned_job(request, request.match_info["job_id"], user_of(request))
    names = request.app[appkeys.SETTINGS].connections.names
    if job.ended and not await request.app[appkeys.REDIS].exists(names.job_cancel_flag(job.job_id)):
        # Ended by a cancel: a second press of the stop button is still accepted.
        raise ApiError(409, "the job has already ended")
    link_to_job(job, "job cancel")
    await request.app[appkeys.CANCELLER].cancel(job.job_id)
    return web.json_response({"jobId": job.job_id, "status": "cancelling"}, status=202)


def last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID", request.query.get("lastEventId", "0"))
    if not raw:
        return 0
    # Taken whole: aiohttp has already trimmed a header's spaces, and str.strip() would also
    # drop a control character, a line separator or U+0085, and read what they wrapped.
    if not LAST_EVENT_ID.fullmatch(raw):
        raise validation_error("lastEventId", "must be a whole number of 0 or more")
    return int(raw)


async def replay_window_passed(request: web.Request, job: JobRecord) -> web.StreamResponse:
    """The events are gone: say so with ``reset``, then the stored message, then ``end``."""
    message = await request.app[appkeys.MESSAGES].get(job.message_id)
    if message is None:
        raise ApiError(410, "the stream's events and its message are gone")
    session = await request.app[appkeys.SESSIONS].get(job.user_id, job.session_id)
    usage = message.usage or {}
    reset = {"type": events.RESET, "reason": "the events are past the replay window"}
    snapshot = {
        "type": events.SNAPSHOT,
        "session": session.to_json() if session else None,
        "messages": [message.to_json()],
    }
    end = {
        "type": events.END,
        **events.end_payload(
            message_id=message.id,
            content=message.content,
            finish_reason=(
                events.FINISH_CANCELLED
                if message.status == STATUS_CANCELLED
                else events.FINISH_STOP
            ),
            tokens=int(usage.get("tokens", 0)),
            ttft_ms=usage.get("ttftMs"),
            duration_ms=int(usage.get("durationMs", 0)),
            citations=message.citations,
        ),
    }
    # `reset` has no seq of its own; `end` carries the job's final seq when it is known, so a
    # client that reconnects after it asks for nothing more.
    end_frame = (
        sse.event_frame(job.final_seq, sse.json_line(end))
        if job.final_seq
        else sse.data_frame(sse.json_line(end))
    )
    body = (
        sse.data_frame(sse.json_line(reset))
        + sse.named_frame(events.SNAPSHOT, sse.json_line(snapshot))
        + end_frame
    )
    return await closed_stream(request, job, body)


async def closed_stream(
    request: web.Request, job: JobRecord, body: bytes = b""
) -> web.StreamResponse:
    """A stream with nothing live left to send: the opening, ``body``, then the end of it."""
    settings = request.app[appkeys.SETTINGS]
    response = web.StreamResponse(
        headers={**SSE_HEADERS, "X-Job-Id": job.job_id, "X-Session-Id": job.session_id}
    )
    await response.prepare(request)
    await response.write(sse.retry_frame(settings.sse_retry_ms) + body)
    await response.write_eof()
    return response
