"""The per-job replay log: a capped Redis stream whose entry ids are the events' seqs.

The worker appends to it (see worker.event_log); any gateway reads it to backfill and resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from shared.logging import get_logger
from shared.names import Names
from shared.wire import Event, WireError, decode_event

log = get_logger(__name__)

# The field of a replay-log entry that holds the msgpack-encoded event.
EVENT_FIELD = b"e"


def entry_id(seq: int) -> str:
    """An entry's id is its event's seq, so Redis refuses a duplicate or out-of-order append."""
    return f"{seq}-0"


async def read_after(redis: Redis, names: Names, job_id: str, after_seq: int) -> list[Event]:
    """The job's logged events with a seq above ``after_seq``, oldest first."""
    entries = await redis.xrange(names.job_replay_log(job_id), min=entry_id(after_seq + 1))
    found: list[Event] = []
    for _, fields in entries or ():
        try:
            found.append(_event_of(fields))
        except WireError as e:
            log.error("replay_log.malformed_entry", job_id=job_id, error=str(e))
    return found


async def last_event(redis: Redis, names: Names, job_id: str) -> Event | None:
    entries = await redis.xrevrange(names.job_replay_log(job_id), count=1)
    if not entries:
        return None
    return _event_of(entries[0][1])


def _event_of(fields: Mapping[Any, Any] | None) -> Event:
    raw = (fields or {}).get(EVENT_FIELD)
    if not isinstance(raw, bytes):
        raise WireError("a replay-log entry has no event")
    return decode_event(raw)


async def bounds(redis: Redis, names: Names, job_id: str) -> tuple[int, int] | None:
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
