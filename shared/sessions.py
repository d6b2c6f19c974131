"""Sessions in Redis: one hash per session, and a per-user sorted set by last update.

A session belongs to the user who created it; to anyone else it does not exist (the one
exception is creating an id another user owns, which is a conflict: the id space is shared).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import WatchError

from shared import redis_scripts
from shared.events import utc_now_iso
from shared.ids import new_id
from shared.messages import DELETED_JOB_LOG_GRACE_S, STATUS_STREAMING
from shared.names import Names
from shared.redis_client import RedisClient, RedisPipeline, as_text, hash_reply

DEFAULT_TITLE = "New conversation"

# KEYS: the session's hash. ARGV: the caller, the new title, now (ISO). Only the caller's
# session is renamed, and a session deleted meanwhile is not brought back as a partial hash.
# Returns the session's fields, or nothing.
_RENAME_IF_OWNED = redis_scripts.LuaScript(
    """
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[1] then
  return {}
end
redis.call('HSET', KEYS[1], 'title', ARGV[2], 'updatedAt', ARGV[3])
return redis.call('HGETALL', KEYS[1])
"""
)


class SessionConflictError(Exception):
    """The session id belongs to another user."""


class BadCursorError(ValueError):
    """A listing cursor that this store did not hand out."""


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    title: str
    user_id: str
    created_at: str
    updated_at: str
    message_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "userId": self.user_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "messageCount": self.message_count,
        }


def _session_from_hash(fields: Mapping[Any, Any]) -> Session:
    return Session(
        id=as_text(fields[b"id"]),
        title=as_text(fields[b"title"]),
        user_id=as_text(fields[b"userId"]),
        created_at=as_text(fields[b"createdAt"]),
        updated_at=as_text(fields[b"updatedAt"]),
        message_count=int(fields.get(b"messageCount", b"0")),
    )


def new_session(user_id: str, title: str | None, session_id: str | None = None) -> Session:
    """A session not stored yet; without ``session_id``, a fresh server-made id, which nothing
    can hold already, so it can be stored unwatched (with the turn that opens it)."""
    now = utc_now_iso()
    return Session(session_id or new_id(), title or DEFAULT_TITLE, user_id, now, now, 0)


def owned_session(user_id: str, fields: Mapping[Any, Any] | None) -> Session | None:
    """The session stored as ``fields`` if ``user_id`` owns it; to anyone else it does not exist."""
    if not fields:
        return None
    session = _session_from_hash(fields)
    return session if session.user_id == user_id else None


def encode_cursor(score: float, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{int(score)}:{session_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, session_id = raw.split(":", 1)
        return int(score), session_id
    except (ValueError, UnicodeDecodeError) as e:
        raise BadCursorError("not a cursor from this listing") from e


class SessionStore:
    def __init__(self, redis: RedisClient, names: Names) -> None:
        self._redis = redis
        self._names = names

    async def create(
        self, user_id: str, session_id: str | None, title: str | None
    ) -> tuple[Session, bool]:
        """Create a session, or return the caller's existing one with that id.
        Returns (session, created); raises SessionConflictError for another user's id."""
        session_id = session_id or new_id()
        key = self._names.session(session_id)
        index = self._names.user_sessions(user_id)
        # Filed first: the index holds every session its user owns, and a listing skips an
        # entry whose session is not theirs.
        filed = await self._redis.zadd(index, {session_id: int(time.time() * 1000)}, nx=True)
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    existing = await pipe.hgetall(key)
                    if existing:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        session = _session_from_hash(existing)
                        if session.user_id != user_id:
                            if filed:
                                await self._redis.zrem(index, session_id)
                            raise SessionConflictError(session_id)
                        return session, False
                    session = new_session(user_id, title, session_id)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self.stage_create(pipe, session)
                    await pipe.execute()
                    return session, True
                except WatchError:
                    continue

    def stage_create(self, pipe: RedisPipeline, session: Session) -> None:
        """Stage writing a session that does not exist yet (see :func:`new_session`), which
        its user's index already holds (it lies in another slot of a cluster)."""
        pipe.hset(
            self._names.session(session.id),
            mapping={
                "id": session.id,
                "title": session.title,
                "userId": session.user_id,
                "createdAt": session.created_at,
                "updatedAt": session.updated_at,
                "messageCount": session.message_count,
            },
        )

    async def get(self, user_id: str, session_id: str) -> Session | None:
        return owned_session(user_id, await self._redis.hgetall(self._names.session(session_id)))

    def stage_get(self, pipe: RedisPipeline, session_id: str) -> None:
        """Stage :meth:`get` into ``pipe``; pass its reply (as a mapping) to
        :func:`owned_session`."""
        pipe.hgetall(self._names.session(session_id))

    async def page(
        self, user_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Session], str | None]:
        """The user's sessions, most recently updated first, ``limit`` at a time."""
        key = self._names.user_sessions(user_id)
        after = decode_cursor(cursor) if cursor else None
        max_score: str | int = after[0] if after else "+inf"
        ids: list[tuple[str, int]] = []
        offset = 0
        # Keyset paging: sessions with the cursor's score come in descending id order, so
        # skip those at or above the cursor's id. Fetch in pages until enough remain.
        while len(ids) <= limit:
            page = await self._redis.zrevrangebyscore(
                key, max_score, "-inf", start=offset, num=limit + 1, withscores=True
            )
            if not page:
                break
            offset += len(page)
            for entry in page:
                member, raw_score = cast(tuple[bytes, float], entry)
                session_id, score = as_text(member), int(raw_score)
                if after and score == after[0] and session_id >= after[1]:
                    continue
                ids.append((session_id, score))
        page_ids, more = ids[:limit], len(ids) > limit
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, _ in page_ids:
                pipe.hgetall(self._names.session(session_id))
            rows = await pipe.execute()
        # An entry whose session is gone or not the user's (a delete that stopped before
        # taking it out of the index) lists nothing.
        sessions = [owned for row in rows if (owned := owned_session(user_id, row)) is not None]
        next_cursor = encode_cursor(page_ids[-1][1], page_ids[-1][0]) if more and page_ids else None
        return sessions, next_cursor

    async def rename(self, user_id: str, session_id: str, title: str) -> Session | None:
        now, now_ms = utc_now_iso(), int(time.time() * 1000)
        fields = await _RENAME_IF_OWNED.run(
            self._redis, [self._names.session(session_id)], [user_id, title, now]
        )
        if not fields:
            return None
        # XX: a session deleted meanwhile stays out of the index.
        await self._redis.zadd(self._names.user_sessions(user_id), {session_id: now_ms}, xx=True)
        return _session_from_hash(hash_reply(fields))

    async def delete(self, user_id: str, session_id: str) -> list[str] | None:
        """Remove the session and everything derived from it: its messages, its summary, and
        its jobs' records and replay logs. Returns the ids of its jobs still streaming, for the
        caller to cancel, or None if the caller has no such session. A running job's replay
        log is left ``DELETED_JOB_LOG_GRACE_S``, so that its open streams read their end; what
        the job writes later does not outlive that either (``MessageStore.forget_job``)."""
        names = self._names
        key = names.session(session_id)
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    if owned_session(user_id, await pipe.hgetall(key)) is None:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return None
                    listed = await pipe.lrange(names.session_messages(session_id), 0, -1)
                    message_ids = [as_text(raw) for raw in listed]
                    jobs = [
                        await pipe.hmget(names.message(message_id), ["jobId", "status"])
                        for message_id in message_ids
                    ]
                    doomed = [key, names.session_messages(session_id)]
                    doomed.append(names.session_summary(session_id))
                    running: list[str] = []
                    for message_id, (job_id, status) in zip(message_ids, jobs, strict=True):
                        doomed += [names.message(message_id), names.message_content(message_id)]
                        if not job_id:
                            continue
                        job = as_text(job_id)
                        doomed.append(names.job_meta(job))
                        if status is not None and as_text(status) == STATUS_STREAMING:
                            running.append(job)
                        else:
                            doomed += [names.job_replay_log(job), names.job_cancel_flag(job)]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(*doomed)
                    for job in running:
                        pipe.expire(names.job_replay_log(job), DELETED_JOB_LOG_GRACE_S)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        # After: the session's own keys go in one transaction of its slot; its entry in the
        # index, in the user's slot, is left for a listing to skip if this never runs.
        await self._redis.zrem(names.user_sessions(user_id), session_id)
        return running
