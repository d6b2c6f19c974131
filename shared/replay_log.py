"""The per-job replay log: a capped Redis stream whose entry ids are the events' seqs.

The worker appends to it (see worker.event_log); any gateway reads it to backfill and resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.typing import EncodableT

from shared import redis_scripts
from shared.events import Event, decode_event
from shared.logging import get_logger
from shared.names import Names
from shared.redis_client import RedisClient, RedisPipeline
from shared.settings import EventLogSettings
from shared.wire import WireError

log = get_logger(__name__)

# The field of a replay-log entry that holds the msgpack-encoded event.
EVENT_FIELD = b"e"


def entry_id(seq: int) -> str:
    """An entry's id is its event's seq, so Redis refuses a duplicate or out-of-order append."""
    return f"{seq}-0"


# KEYS: the replay log, the job's channel. ARGV: max entries, ttl, first seq, the publish
# command (PUBLISH, or SPUBLISH on a cluster: shared.redis_client.publish_command), then the
# events. All or nothing, and only right after the log's last entry: a batch can never
# interleave with another writer's events (a gateway that ended the job as stalled, a worker
# that took it over). The first XADD is the check: Redis refuses an id at or below the stream's
# last one, and once it is taken the rest of the batch follows it. A batch sent again whose
# first send landed (its reply lost to a dropped link or a timeout, and the client retried)
# finds itself already logged, byte for byte and last: that is no conflict, and nothing is
# published twice. Field 'e' is EVENT_FIELD. Returns 0 when appended (or already), else the seq
# the log ends at.
APPEND_EVENTS = redis_scripts.LuaScript(
    """
local first = tonumber(ARGV[3])
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], first .. '-0', 'e', ARGV[5])
if type(added) == 'table' and added.err then
  local err = tostring(added.err)
  if not string.find(err, 'equal or smaller', 1, true) then
    return redis.error_reply(err)
  end
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local last_seq = tonumber(string.match(last[1][1], '^%d+'))
  if last_seq == first + #ARGV - 5 then
    local logged = redis.call('XRANGE', KEYS[1], first .. '-0', '+')
    local same = #logged == #ARGV - 4
    for i = 1, #logged do
      same = same and logged[i][2][2] == ARGV[i + 4]
    end
    if same then
      return 0
    end
  end
  return last_seq
end
redis.call(ARGV[4], KEYS[2], ARGV[5])
for i = 6, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], (first + i - 5) .. '-0', 'e', ARGV[i])
  redis.call(ARGV[4], KEYS[2], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""
)


class EventAppender:
    """Appends a job's consecutive events to its replay log and publishes them, in one step."""

    def __init__(self, names: Names, settings: EventLogSettings, publish_command: str) -> None:
        self._names = names
        self._settings = settings
        self._publish_command = publish_command

    def stage(self, pipe: RedisPipeline, job_id: str, first_seq: int, raws: list[bytes]) -> None:
        """Stage the append of the events ``first_seq``, ``first_seq + 1``, ... (msgpack bytes)
        into ``pipe`` (non-transactional), for :func:`shared.redis_scripts.run_staged`. Its
        reply is 0 (appended, or found already logged as it is, and not published again), or
        the seq the log already ended at (nothing was appended)."""
        APPEND_EVENTS.stage(pipe, *self._keys_and_args(job_id, first_seq, raws))

    def command(self, job_id: str, first_seq: int, raws: list[bytes]) -> tuple[Any, ...]:
        """The EVALSHA that :meth:`stage` stages, word by word, for a client that sends it by
        other means (and loads :data:`APPEND_EVENTS` first)."""
        return APPEND_EVENTS.command(*self._keys_and_args(job_id, first_seq, raws))

    def _keys_and_args(
        self, job_id: str, first_seq: int, raws: list[bytes]
    ) -> tuple[list[str], list[EncodableT]]:
        settings = self._settings
        keys = [self._names.job_replay_log(job_id), self._names.job_channel(job_id)]
        return keys, [
            settings.replay_max_events,
            settings.replay_ttl_s,
            first_seq,
            self._publish_command,
            *raws,
        ]


async def read_after(redis: RedisClient, names: Names, job_id: str, after_seq: int) -> list[Event]:
    """The job's logged events with a seq above ``after_seq``, oldest first."""
    entries = await redis.xrange(names.job_replay_log(job_id), min=entry_id(after_seq + 1))
    found: list[Event] = []
    for _, fields in entries or ():
        try:
            found.append(_event_of(fields))
        except WireError as e:
            log.error("replay_log.malformed_entry", job_id=job_id, error=str(e))
    return found


async def last_event(redis: RedisClient, names: Names, job_id: str) -> Event | None:
    entries = await redis.xrevrange(names.job_replay_log(job_id), count=1)
    if not entries:
        return None
    return _event_of(entries[0][1])


def _event_of(fields: Mapping[Any, Any] | None) -> Event:
    raw = (fields or {}).get(EVENT_FIELD)
    if not isinstance(raw, bytes):
        raise WireError("a replay-log entry has no event")
    return decode_event(raw)


async def bounds(redis: RedisClient, names: Names, job_id: str) -> tuple[int, int] | None:
    """The first and last seq still in the job's log, or None when it holds nothing."""
    key = names.job_replay_log(job_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrange(key, count=1)
        pipe.xrevrange(key, count=1)
        first, last = await pipe.execute()
    if not first or not last:
        return None
    return _seq_of_entry_id(first[0][0]), _seq_of_entry_id(last[0][0])


def _seq_of_entry_id(entry_id: object) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(raw.split("-", 1)[0])
