"""Publishing a job's events: each one goes to the job's pub/sub channel and into its replay
log in a single round trip, with ``seq`` rising strictly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import replay_log
from shared.names import Names
from shared.settings import EventLogSettings
from shared.wire import Event, encode_event


class EventLogConflictError(Exception):
    """Someone else has written the job's next event; this run must stop."""


class EventPublishError(ConnectionError):
    """Redis stayed unreachable for longer than the publish retry bound."""


# What Redis says when an XADD names an entry id at or below the stream's last one.
TAKEN_SEQ_ERROR = "equal or smaller"
RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0


Staging = Callable[[Pipeline], Awaitable[None]]


class JobEventLog:
    """The events of one job, as one worker publishes them."""

    def __init__(self, redis: Redis, names: Names, settings: EventLogSettings, job_id: str) -> None:
        self._redis = redis
        self._names = names
        self._settings = settings
        self._job_id = job_id
        self._channel = names.job_channel(job_id)
        self._log_key = names.job_replay_log(job_id)
        self._seq = 0
        self.published = 0

    async def resume(self) -> Event | None:
        """Continue after the last event already in the log (a redelivered job's earlier run),
        and return that event, if there is one."""
        event = await replay_log.last_event(self._redis, self._names, self._job_id)
        if event is not None:
            self._seq = event.seq
        return event

    @property
    def last_seq(self) -> int:
        return self._seq

    async def emit(
        self, event_type: str, payload: dict[str, Any], *, persist: Staging | None = None
    ) -> Event:
        """Publish one event. ``persist`` stages writes that must land with it (the message
        the event changes), ahead of the event, so a reader never sees the event first.

        While Redis is unreachable the event is held and retried, for up to
        ``publish_retry_s``; the seq stays the same, so a retry cannot duplicate it."""
        self._seq += 1
        event = Event(job_id=self._job_id, seq=self._seq, type=event_type, payload=payload)
        raw = encode_event(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.publish_retry_s
        attempt = 0
        while True:
            try:
                await self._publish(raw, persist)
                break
            except (RedisConnectionError, RedisTimeoutError) as e:
                if loop.time() >= deadline:
                    raise EventPublishError(self._job_id) from e
                attempt += 1
                await asyncio.sleep(min(RETRY_BASE_S * 2**attempt, RETRY_CAP_S))
            except ResponseError as e:
                if TAKEN_SEQ_ERROR not in str(e):
                    raise
                if attempt:
                    break  # an earlier attempt landed before the link dropped
                # The log already holds this seq: a gateway ended the job as stalled, or
                # another worker took it over. This run no longer owns the stream.
                raise EventLogConflictError(self._job_id) from e
        self.published += 1
        return event

    async def _publish(self, raw: bytes, persist: Staging | None) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            if persist is not None:
                await persist(pipe)
            pipe.xadd(
                self._log_key,
                {replay_log.EVENT_FIELD: raw},
                id=replay_log.entry_id(self._seq),
                maxlen=self._settings.replay_max_events,
                approximate=True,
            )
            pipe.expire(self._log_key, self._settings.replay_ttl_s)
            pipe.publish(self._channel, raw)
            await pipe.execute()
