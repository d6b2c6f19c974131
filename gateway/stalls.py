"""Ending a job whose worker went silent: once no event has come for JOB_STALL_S, a gateway
appends an ``error`` event in the job's own sequence and marks its message ``error``.

The append names the next seq as its replay-log entry id, so if the worker speaks again first
(or another gateway got there first), Redis refuses it and nothing is written twice.
"""

from __future__ import annotations

import asyncio

from gateway.client_stream import ClientStream
from shared import events, redis_scripts, replay_log
from shared.events import Event, encode_event
from shared.logging import get_logger
from shared.messages import DELETED_JOB_LOG_GRACE_S, JOB_ENDED, STATUS_ERROR
from shared.names import Names
from shared.redis_client import RedisClient, is_redis_failure, publish_command
from shared.settings import EventLogSettings

log = get_logger(__name__)

# KEYS: replay log, message hash, job meta, the job's channel.
# ARGV: entry id, event, ttl, the publish command (shared.redis_client.publish_command), max
# events, message status, job status, event field, the event's seq, the ttl of a log whose
# session was deleted. A job whose session was deleted
# (its message gone) keeps its log only for its open streams, and gets no record back.
_FAIL_IF_STILL_LAST = redis_scripts.LuaScript(
    """
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], ARGV[1], ARGV[8], ARGV[2])
if type(added) == 'table' and added.err then
  return 0
end
redis.call(ARGV[4], KEYS[4], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[10])
  redis.call('DEL', KEYS[3])
  return 1
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'status', ARGV[6])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'status', ARGV[7], 'finalSeq', ARGV[9])
end
return 1
"""
)


class StallBreaker:
    def __init__(self, redis: RedisClient, names: Names, event_log: EventLogSettings) -> None:
        self._names = names
        self._event_log = event_log
        self._redis = redis

    async def fail(self, job_id: str, message_id: str, last_seq: int, stall_s: float) -> bool:
        """End the job with an error after ``last_seq``; False if it moved on meanwhile."""
        event = Event(
            job_id=job_id,
            seq=last_seq + 1,
            type=events.ERROR,
            payload=events.error_payload(
                f"the job stalled: no progress for {stall_s:g} s", "job_stalled"
            ),
        )
        names = self._names
        added = await _FAIL_IF_STILL_LAST.run(
            self._redis,
            keys=[
                names.job_replay_log(job_id),
                names.message(message_id),
                names.job_meta(job_id),
                names.job_channel(job_id),
            ],
            args=[
                replay_log.entry_id(event.seq),
                encode_event(event),
                self._event_log.replay_ttl_s,
                publish_command(self._redis),
                self._event_log.replay_max_events,
                STATUS_ERROR,
                JOB_ENDED,
                replay_log.EVENT_FIELD,
                event.seq,
                DELETED_JOB_LOG_GRACE_S,
            ],
        )
        return bool(added)


class StreamUnavailableError(Exception):
    """A stream cannot go on: its job went silent and Redis cannot be reached to end it."""


class StallWatch:
    """One stream's watch on its job: ends the job once, after JOB_STALL_S of silence."""

    # Every open stream has one: slots spare each its own attribute dict.
    __slots__ = (
        "_breaker",
        "_client",
        "_done",
        "_job_id",
        "_loop",
        "_message_id",
        "_quiet_since",
        "_seen_seq",
        "_stall_s",
    )

    def __init__(
        self,
        breaker: StallBreaker,
        stall_s: float,
        job_id: str,
        message_id: str,
        client: ClientStream,
    ) -> None:
        self._breaker = breaker
        self._stall_s = stall_s
        self._job_id = job_id
        self._message_id = message_id
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._seen_seq = client.queued_seq
        self._quiet_since = self._loop.time()
        self._done = False

    async def check(self) -> None:
        """Called at each heartbeat."""
        if self._client.queued_seq != self._seen_seq:
            self._seen_seq, self._quiet_since = self._client.queued_seq, self._loop.time()
            return
        stall_s = self._stall_s
        if self._done or self._seen_seq == 0 or self._loop.time() - self._quiet_since < stall_s:
            return
        self._done = True
        try:
            ended = await self._breaker.fail(
                self._job_id, self._message_id, self._seen_seq, stall_s
            )
        except Exception as e:
            if not is_redis_failure(e):
                raise
            raise StreamUnavailableError(
                "the event store cannot be reached; reconnect with Last-Event-ID to resume"
            ) from e
        log.warning("job.stalled", job_id=self._job_id, after_seq=self._seen_seq, ended=ended)
