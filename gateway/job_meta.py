"""A job's ownership record (written with the turn, see shared.messages): who may resume or
cancel it, which message it writes, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway import appkeys
from gateway.errors import not_found
from shared.messages import JOB_ENDED
from shared.redis_client import as_text


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    user_id: str
    session_id: str
    message_id: str
    status: str
    # The seq of the job's final event, once it has ended (0 before).
    final_seq: int = 0
    # The traceparent of the request that made the job; "" when it was not traced.
    traceparent: str = ""

    @property
    def ended(self) -> bool:
        return self.status == JOB_ENDED


async def owned_job(request: web.Request, job_id: str, user_id: str) -> JobRecord:
    """The job if ``user_id`` owns it; 404 otherwise, as if it did not exist."""
    names = request.app[appkeys.SETTINGS].connections.names
    fields = await request.app[appkeys.REDIS].hgetall(names.job_meta(job_id))
    if not fields or as_text(fields.get(b"userId", b"")) != user_id:
        raise not_found("job")
    return JobRecord(
        job_id=job_id,
        user_id=user_id,
        session_id=as_text(fields.get(b"sessionId", b"")),
        message_id=as_text(fields.get(b"messageId", b"")),
        status=as_text(fields.get(b"status", b"")),
        final_seq=int(fields.get(b"finalSeq", b"0")),
        traceparent=as_text(fields.get(b"traceparent", b"")),
    )
