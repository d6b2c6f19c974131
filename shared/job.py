"""A job: one chat turn for a worker to run, sent by the gateway over the job queue, and its
msgpack encoding (in the envelope of :mod:`shared.wire`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared import wire
from shared.wire import WIRE_VERSION, WireError


@dataclass(frozen=True, slots=True)
class Job:
    """One chat turn for a worker to run."""

    job_id: str
    session_id: str
    message_id: str
    user_id: str
    pipeline: str
    text: str
    request_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    created_at_ms: int = 0


def encode_job(job: Job) -> bytes:
    """The job as msgpack; raises :class:`WireError` if its options cannot be encoded."""
    return wire.pack(
        {
            "v": WIRE_VERSION,
            "job_id": job.job_id,
            "session_id": job.session_id,
            "message_id": job.message_id,
            "user_id": job.user_id,
            "pipeline": job.pipeline,
            "text": job.text,
            "request_id": job.request_id,
            "options": job.options,
            "created_at_ms": job.created_at_ms,
        },
        "job",
    )


def decode_job(raw: bytes) -> Job:
    """The job in ``raw``; raises :class:`WireError` if it is not a job of this wire version."""
    data = wire.unpack(raw, "job")
    try:
        options = data.get("options", {})
        if not isinstance(options, dict):
            raise TypeError("options must be a map")
        return Job(
            job_id=wire.text(data["job_id"]),
            session_id=wire.text(data["session_id"]),
            message_id=wire.text(data["message_id"]),
            user_id=wire.text(data["user_id"]),
            pipeline=wire.text(data["pipeline"]),
            text=wire.text(data["text"]),
            request_id=wire.text(data.get("request_id", "")),
            options=options,
            created_at_ms=int(data.get("created_at_ms", 0)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise WireError(f"malformed job: {e!r}") from e
