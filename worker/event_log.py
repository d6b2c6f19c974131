"""Publishing a job's events: each one goes to the job's pub/sub channel and into its replay
log, with ``seq`` rising strictly.

:meth:`JobEventLog.emit` queues an event and returns; one sender task writes everything queued
since its last round trip in one pipeline. An event on its own goes out at once, while the
events a pipeline produces back to back (``start`` and the progress steps, tokens that arrive
together) share a round trip instead of each waiting for the one before. :meth:`flush` waits
until everything emitted is in Redis; the worker acks a job only after flushing its final event.
:meth:`read_along` puts a read into the next of those round trips instead of one of its own.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import redis_scripts, replay_log
from shared.events import Event, encode_event
from shared.library_internals import is_dropped_connection
from shared.names import Names
from shared.redis_client import RedisClient, RedisPipeline, publish_command
from shared.settings import EventLogSettings


class EventLogConflictError(Exception):
    """Someone else has written the job's next event; this run must stop."""


class EventPublishError(Exception):
    """Redis stayed unreachable for longer than the publish retry bound. Not a ConnectionError:
    a backend that failed must never pass for a client that left."""


# What a retry gets past (see JobEventLog._retried).
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    TryAgainError,
    ClusterDownError,
    # The cluster client's slot map has no node for the slot yet (a failover under way).
    SlotNotCoveredError,
)


def _unavailable(error: Exception) -> bool:
    return isinstance(error, _UNAVAILABLE) or is_dropped_connection(error)


RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0
# Past this many unsent events, emit waits for the sender: a pipeline that produces events
# faster than Redis takes them is slowed down instead of queueing without bound.
MAX_QUEUED_EVENTS = 256


Staging = Callable[[RedisPipeline], None]
T = TypeVar("T")
P = ParamSpec("P")


class MergeableStaging(ABC):
    """A staging that may absorb the one right after it in a batch, so that consecutive writes
    of one kind (the tokens of a batch, into the stored message) go to Redis as one command.
    A base class rather than a runtime-checkable protocol: checking one of those is a walk
    over its members, each time (about 5% of a worker's CPU per short chat)."""

    __slots__ = ()

    @abstractmethod
    def __call__(self, pipe: RedisPipeline) -> None: ...

    @abstractmethod
    def merged(self, following: Staging) -> Staging | None:
        """One staging doing this one's writes and then ``following``'s; None if it cannot."""


@dataclass(frozen=True, slots=True)
class _Read:
    stage: Staging
    reply: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Queued:
    seq: int
    raw: bytes
    persist: Staging | None


class JobEventLog:
    """The events of one job, as one worker publishes them."""

    def __init__(
        self, redis: RedisClient, names: Names, settings: EventLogSettings, job_id: str
    ) -> None:
        self._redis = redis
        self._names = names
        self._settings = settings
        self._job_id = job_id
        self._seq = 0
        self._queued: list[_Queued] = []
        self._reads: list[_Read] = []
        self._sender: asyncio.Task[None] | None = None
        self._failure: Exception | None = None
        self._appender = replay_log.EventAppender(names, settings, publish_command(redis))
        self.published = 0

    async def resume(self) -> Event | None:
        """Continue after the last event already in the log (a redelivered job's earlier run),
        and return that event, if there is one. Read with the same patience as events are
        written: EventPublishError if Redis stays away past ``publish_retry_s``."""
        event = await self._retried(replay_log.last_event, self._redis, self._names, self._job_id)
        if event is not None:
            self._seq = event.seq
        return event

    @property
    def last_seq(self) -> int:
        return self._seq

    async def emit(
        self, event_type: str, payload: dict[str, Any], *, persist: Staging | None = None
    ) -> Event:
        """Queue one event for publishing. ``persist`` stages writes that must land with it
        (the message the event changes), ahead of the event, so a reader never sees the event
        first. It runs when the event's round trip is built, and again if that is retried.

        Raises the error that stopped an earlier event, if one did: a run whose log is broken
        must not go on producing events nobody will see."""
        self._raise_failure()
        self._seq += 1
        event = Event(job_id=self._job_id, seq=self._seq, type=event_type, payload=payload)
        self._queued.append(_Queued(self._seq, encode_event(event), persist))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued(), name=f"events-{self._job_id}")
        if len(self._queued) >= MAX_QUEUED_EVENTS:
            await self.flush()
        return event

    def read_along(self, stage: Staging) -> asyncio.Future[Any]:
        """Stage a read (one command) into the round trip of the next events emitted, instead of
        a round trip of its own. The future resolves with its reply once that round trip is
        done, or with the error that stopped it (which the next emit or flush raises too)."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reads.append(_Read(stage, reply))
        return reply

    async def flush(self) -> None:
        """Wait until every emitted event is in Redis, or raise why one could not be.

        Cancelling the caller leaves the sender running: a batch cut off halfway would leave a
        gap in the seqs that later events could not close."""
        if self._sender is not None:
            await asyncio.shield(self._sender)
        self._raise_failure()

    async def aclose(self) -> None:
        """Stop sending (the run is over, or abandoned): what is still queued is dropped."""
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        for read in self._reads:
            read.reply.cancel()
        self._reads.clear()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _send_queued(self) -> None:
        # Errors are kept for the next emit or flush, never left on the task unretrieved.
        try:
            if self.published == 0:
                # The run's first round trip takes what else is emitted in this turn of the
                # event loop: after ``start``, the pipeline's first events (all of them, for a
                # short answer). Later events go at once, as they come.
                await asyncio.sleep(0)
            while self._queued:
                batch, self._queued = self._queued, []
                # The reads staged so far go with this batch (later ones wait for the next).
                reads = self._reads[:]
                replies = await self._retried(self._send, batch, reads)
                del self._reads[: len(reads)]
                self.published += len(batch)
                for read, reply in zip(reads, replies, strict=True):
                    if not read.reply.done():
                        read.reply.set_result(reply)
        except (EventLogConflictError, EventPublishError) as e:
            self._fail(e)
        except Exception as e:
            # Whatever else stopped a batch (Redis refusing a write is a bug, not an outage),
            # the job's events cannot be published: the worker hands the job back.
            failure = EventPublishError(self._job_id)
            failure.__cause__ = e
            self._fail(failure)

    def _fail(self, failure: Exception) -> None:
        self._failure = failure
        self._queued.clear()
        for read in self._reads:
            if not read.reply.done():
                read.reply.set_exception(failure)
                # Retrieved here: a run that never awaits it gets the same error from its next
                # emit or flush, and asyncio would otherwise log it as never retrieved.
                read.reply.exception()
        self._reads.clear()

    async def _retried(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``operation``'s result, retried for up to ``publish_retry_s`` while Redis is
        unreachable, a cluster's slot is on the move (TRYAGAIN: the job's keys are split between
        two nodes until the move ends) or without a primary (CLUSTERDOWN, until a replica takes
        over; meanwhile the client may close a connection under the write).

        A batch of events keeps its seqs across retries and lands whole or not at all, so a
        retry cannot duplicate an event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.publish_retry_s
        attempt = 0
        while True:
            try:
                return await operation(*args, **kwargs)
            except Exception as e:
                if not _unavailable(e):
                    raise
                if loop.time() >= deadline:
                    raise EventPublishError(self._job_id) from e
                attempt += 1
                await asyncio.sleep(min(RETRY_BASE_S * 2**attempt, RETRY_CAP_S))

    async def _send(self, batch: list[_Queued], reads: list[_Read]) -> list[Any]:
        """Send ``batch`` (and ``reads`` ahead of it); returns the reads' replies."""
        persists = _merged([q.persist for q in batch if q.persist is not None])
        raws = [q.raw for q in batch]

        def stage(pipe: RedisPipeline) -> None:
            for read in reads:
                read.stage(pipe)
            for persist in persists:
                persist(pipe)
            self._appender.stage(pipe, self._job_id, batch[0].seq, raws)

        results = await redis_scripts.run_staged(self._redis, stage)
        # 0 also when the log already holds exactly this batch: an earlier send of it that
        # landed, or another run's byte-identical events (the script recognises either).
        if int(results[-1]) == 0:
            return list(results[: len(reads)])
        # The log already holds these seqs: a gateway ended the job as stalled, or another
        # worker took it over. This run no longer owns the stream.
        raise EventLogConflictError(self._job_id)


def _merged(stagings: list[Staging]) -> list[Staging]:
    """``stagings`` in order, each merged into the one before it where that one can take it."""
    merged: list[Staging] = []
    for staging in stagings:
        previous = merged[-1] if merged else None
        combined = previous.merged(staging) if isinstance(previous, MergeableStaging) else None
        if combined is None:
            merged.append(staging)
        else:
            merged[-1] = combined
    return merged
