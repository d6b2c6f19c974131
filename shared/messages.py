"""Messages in Redis: a hash per message and a string holding its text, listed per session.

The gateway stores a turn (the user's message and the assistant's, ``streaming``) before it
sends the job. The worker then grows the assistant's text token by token and settles it, in the
same round trip as the events themselves, so a reader always sees the content so far. Those
writes are conditional on the message still existing: a deleted session stays deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.typing import EncodableT, FieldT

from shared import redis_scripts
from shared.events import utc_now_iso
from shared.names import Names
from shared.redis_client import RedisClient, RedisPipeline, as_text

STATUS_COMPLETE = "complete"
STATUS_STREAMING = "streaming"
STATUS_CANCELLED = "cancelled"
STATUS_ERROR = "error"

JOB_QUEUED = "queued"
JOB_RUNNING = "running"
JOB_ENDED = "ended"
# A job's ownership record outlives its replay window, so late resumes get 410, not 404.
JOB_META_TTL_S = 7 * 24 * 3600
# The replay log of a job whose session was deleted lives this long after its last write, so
# that a stream still open reads the job's end, and then goes: nothing can open it any more
# (its ownership record is gone), and nothing of a deleted session may stay.
DELETED_JOB_LOG_GRACE_S = 30

# KEYS: a hash. ARGV: field, value, ... Written only while the hash exists: a job's record
# deleted with its session must not come back, without an owner or an expiry, from the
# writes of a job still running then.
_HSET_IF_EXISTS = redis_scripts.LuaScript(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], unpack(ARGV))
end
return 0
"""
)

# KEYS: message hash, message content. ARGV: byte offset, text. Writing at an offset rather
# than appending makes a retried write harmless.
_WRITE_AT_IF_EXISTS = redis_scripts.LuaScript(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('SETRANGE', KEYS[2], ARGV[1], ARGV[2])
end
return -1
"""
)

# KEYS: message hash, message content, session hash.
# ARGV: status, content, citations JSON, usage JSON, now ISO.
_SETTLE_IF_EXISTS = redis_scripts.LuaScript(
    """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'citations', ARGV[3], 'usage', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'updatedAt', ARGV[5])
end
return 1
"""
)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    session_id: str
    role: str
    content: str
    status: str
    created_at: str
    job_id: str | None = None
    citations: list[Any] | None = None
    usage: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "status": self.status,
            "createdAt": self.created_at,
        }
        if self.job_id:
            body["jobId"] = self.job_id
        if self.citations is not None:
            body["citations"] = self.citations
        if self.usage is not None:
            body["usage"] = self.usage
        return body


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """What the gateway stores for one chat message before it sends the job."""

    session_id: str
    user_id: str
    job_id: str
    user_message_id: str
    assistant_message_id: str
    text: str
    created_at: str = field(default_factory=utc_now_iso)
    created_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    # The W3C traceparent of the request that made the job, when traced: a resume or a cancel
    # links its own trace to it.
    traceparent: str = ""

    def messages(self) -> list[Message]:
        """The user's message and the assistant's placeholder, exactly as stored."""
        return [
            Message(
                id=self.user_message_id,
                session_id=self.session_id,
                role="user",
                content=self.text,
                status=STATUS_COMPLETE,
                created_at=self.created_at,
            ),
            Message(
                id=self.assistant_message_id,
                session_id=self.session_id,
                role="assistant",
                content="",
                status=STATUS_STREAMING,
                created_at=self.created_at,
                job_id=self.job_id,
            ),
        ]


class MessageStore:
    def __init__(self, redis: RedisClient, names: Names) -> None:
        self._redis = redis
        self._names = names

    def stage_turn(self, pipe: RedisPipeline, turn: StoredTurn) -> None:
        """Stage storing ``turn`` into ``pipe``: commands to run together, in
        gateway/guarded_writes.py's script, which files the session in its user's index."""
        names = self._names
        for message in turn.messages():
            self._stage_message(pipe, message)
        pipe.rpush(
            names.session_messages(turn.session_id),
            turn.user_message_id,
            turn.assistant_message_id,
        )
        pipe.hincrby(names.session(turn.session_id), "messageCount", 2)
        pipe.hset(names.session(turn.session_id), "updatedAt", turn.created_at)
        meta: dict[FieldT, EncodableT] = {
            "userId": turn.user_id,
            "sessionId": turn.session_id,
            "messageId": turn.assistant_message_id,
            "status": JOB_QUEUED,
        }
        if turn.traceparent:
            meta["traceparent"] = turn.traceparent
        pipe.hset(names.job_meta(turn.job_id), mapping=meta)
        pipe.expire(names.job_meta(turn.job_id), JOB_META_TTL_S)

    def _stage_message(self, pipe: RedisPipeline, message: Message) -> None:
        """One message of a turn: its hash and its content."""
        fields: dict[FieldT, EncodableT] = {
            "sessionId": message.session_id,
            "createdAt": message.created_at,
            "id": message.id,
            "role": message.role,
            "status": message.status,
        }
        if message.job_id:
            fields["jobId"] = message.job_id
        pipe.hset(self._names.message(message.id), mapping=fields)
        pipe.set(self._names.message_content(message.id), message.content)

    async def abandon_turn(self, turn: StoredTurn) -> None:
        """The job of ``turn`` was never sent: its answer is an error, not forever streaming."""

        def stage(pipe: RedisPipeline) -> None:
            self.stage_settle(
                pipe,
                message_id=turn.assistant_message_id,
                session_id=turn.session_id,
                user_id=turn.user_id,
                status=STATUS_ERROR,
                content="",
            )
            self.stage_job_status(pipe, turn.job_id, JOB_ENDED)

        # Not a transaction: its writes lie in two slots of a cluster; each is conditional.
        await redis_scripts.run_staged(self._redis, stage)

    async def of_session(self, session_id: str) -> list[Message]:
        return await self.read(
            await self._redis.lrange(self._names.session_messages(session_id), 0, -1)
        )

    def stage_list(self, pipe: RedisPipeline, session_id: str) -> None:
        """Stage listing the session's message ids into ``pipe``; pass its reply to
        :meth:`read`."""
        pipe.lrange(self._names.session_messages(session_id), 0, -1)

    async def read(self, listed: list[Any]) -> list[Message]:
        """The messages whose ids are ``listed`` (as Redis returned them), in that order; those
        deleted meanwhile are left out."""
        ids = [as_text(raw) for raw in listed]
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.hgetall(self._names.message(message_id))
                pipe.get(self._names.message_content(message_id))
            rows = await pipe.execute()
        messages = []
        for fields, content in zip(rows[::2], rows[1::2], strict=True):
            if fields:
                messages.append(_message_from(fields, content))
        return messages

    async def get(self, message_id: str) -> Message | None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._names.message(message_id))
            pipe.get(self._names.message_content(message_id))
            fields, content = await pipe.execute()
        return _message_from(fields, content) if fields else None

    # The worker's writes: staged into the pipeline that publishes the matching event.

    def stage_write_at(self, pipe: RedisPipeline, message_id: str, offset: int, text: str) -> None:
        """Write ``text`` into the message's content at byte ``offset`` (UTF-8)."""
        keys = [self._names.message(message_id), self._names.message_content(message_id)]
        _WRITE_AT_IF_EXISTS.stage(pipe, keys, [offset, text])

    def stage_settle(
        self,
        pipe: RedisPipeline,
        *,
        message_id: str,
        session_id: str,
        user_id: str,
        status: str,
        content: str,
        citations: list[Any] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        """Stage the message's last write, and its session's move to the top of its user's
        listing: the first in the session's slot, the second in the user's, each conditional
        on its own (XX: a session deleted, and so taken out of the index, stays out)."""
        keys = [
            self._names.message(message_id),
            self._names.message_content(message_id),
            self._names.session(session_id),
        ]
        args: list[str | int] = [
            status,
            content,
            json.dumps(citations if citations is not None else []),
            json.dumps(usage if usage is not None else {}),
            utc_now_iso(),
        ]
        _SETTLE_IF_EXISTS.stage(pipe, keys, args)
        pipe.zadd(
            self._names.user_sessions(user_id), {session_id: int(time.time() * 1000)}, xx=True
        )

    def stage_job_status(self, pipe: RedisPipeline, job_id: str, status: str) -> None:
        _HSET_IF_EXISTS.stage(pipe, [self._names.job_meta(job_id)], ["status", status])

    def stage_job_end(self, pipe: RedisPipeline, job_id: str, final_seq: int) -> None:
        """The job is over; its final event's seq outlives the replay log (for late resumes)."""
        _HSET_IF_EXISTS.stage(
            pipe, [self._names.job_meta(job_id)], ["status", JOB_ENDED, "finalSeq", final_seq]
        )

    def stage_message_exists(self, pipe: RedisPipeline, message_id: str) -> None:
        """Stage whether the message still exists (0 once its session is deleted)."""
        pipe.exists(self._names.message(message_id))

    async def forget_job(self, job_id: str) -> None:
        """What a job wrote after its session was deleted goes: its record at once, its
        replay log once a stream still open has read the end (``DELETED_JOB_LOG_GRACE_S``),
        and its cancel flag with it (a redelivery meanwhile still stops at once)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._names.job_meta(job_id))
            pipe.expire(self._names.job_replay_log(job_id), DELETED_JOB_LOG_GRACE_S)
            pipe.expire(self._names.job_cancel_flag(job_id), DELETED_JOB_LOG_GRACE_S)
            await pipe.execute()


def _message_from(fields: Mapping[Any, Any], content: object) -> Message:
    def text(name: bytes) -> str | None:
        raw = fields.get(name)
        return as_text(raw) if raw is not None else None

    citations = text(b"citations")
    usage = text(b"usage")
    return Message(
        id=text(b"id") or "",
        session_id=text(b"sessionId") or "",
        role=text(b"role") or "",
        content=as_text(content or b""),
        status=text(b"status") or "",
        created_at=text(b"createdAt") or "",
        job_id=text(b"jobId"),
        citations=json.loads(citations) if citations else None,
        usage=json.loads(usage) if usage else None,
    )
