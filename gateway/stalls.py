"""Ending a job whose worker went silent: once no event has come for JOB_STALL_S, a gateway
appends an ``error`` event in the job's own sequence and marks its message ``error``.

The append names the next seq as its replay-log entry id, so if the worker speaks again first
(or another gateway got there first), Redis refuses it and nothing is written twice.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared import events, replay_log
from shared.messages import JOB_ENDED, STATUS_ERROR
from shared.names import Names
from shared.settings import EventLogSettings
from shared.wire import Event, encode_event

# KEYS: replay log, message hash, job meta.
# ARGV: entry id, event, ttl, channel, max events, message status, job status, event field.
_FAIL_IF_STILL_LAST = """
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], ARGV[1], ARGV[8], ARGV[2])
if type(added) == 'table' and added.err then
  return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'status', ARGV[6])
end
redis.call('HSET', KEYS[3], 'status', ARGV[7])
return 1
"""


class StallBreaker:
    def __init__(self, redis: Redis, names: Names, event_log: EventLogSettings) -> None:
        self._names = names
        self._event_log = event_log
        self._script = redis.register_script(_FAIL_IF_STILL_LAST)

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
        added = await self._script(
            keys=[names.job_replay_log(job_id), names.message(message_id), names.job_meta(job_id)],
            args=[
                replay_log.entry_id(event.seq),
                encode_event(event),
                self._event_log.replay_ttl_s,
                names.job_channel(job_id),
                self._event_log.replay_max_events,
                STATUS_ERROR,
                JOB_ENDED,
                replay_log.EVENT_FIELD,
            ],
        )
        return bool(added)
