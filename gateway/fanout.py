"""The gateway's Redis pub/sub connection, shared by all of its streams (on a cluster, one per
node that holds some of their jobs).

A registry maps each job channel to the streams watching it. The channel is subscribed when its
first stream arrives (and the caller waits for Redis to confirm it, so no event published after
that can be missed) and unsubscribed when its last stream leaves. Each message is decoded and
encoded once, then handed to every stream on its channel. The connection is a
:class:`~shared.pubsub_listener.PubSubListener` (on a cluster, a
:class:`~shared.shard_listener.ShardedListener`); each time channels are live again after an
outage, a slot move or a failover, their streams are handed what they missed, from the replay
log.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Iterator
from typing import Protocol

from shared import replay_log
from shared.events import Event, decode_event
from shared.logging import get_logger
from shared.names import Names
from shared.pubsub_listener import SubscribeError
from shared.redis_client import RedisClient, is_cluster
from shared.shard_listener import listener_for
from shared.tasks import cancel_and_wait
from shared.wire import WireError

log = get_logger(__name__)

# Replay logs read at once while recovering: thousands of held streams catch up in a fraction of
# the time one read after another takes, and the client's pool keeps connections for the rest.
BACKFILL_CONCURRENCY = 16


class Subscriber(Protocol):
    @property
    def queued_seq(self) -> int: ...

    def deliver(self, event: Event) -> None: ...

    def hold_live(self) -> None: ...

    def release_live(self, replayed: list[Event]) -> None: ...


class FanoutUnavailableError(Exception):
    """Redis could not take a subscription, or did not confirm it in time."""


class Watchers:
    """Which streams watch which channel, and handing a channel's message to them."""

    def __init__(self) -> None:
        # Per channel, its stream, or a set of them when several watch one job (rare: a set is
        # about 200 bytes, which ten thousand idle streams would each pay for).
        self._by_channel: dict[str, Subscriber | set[Subscriber]] = {}

    @property
    def channel_count(self) -> int:
        return len(self._by_channel)

    def __iter__(self) -> Iterator[Subscriber]:
        """Every stream, once per channel it watches."""
        for channel in list(self._by_channel):
            yield from self.of(channel)

    def add(self, channel: str, subscriber: Subscriber) -> bool:
        """Whether ``subscriber`` is the channel's first."""
        watching = self._by_channel.get(channel)
        if watching is None:
            self._by_channel[channel] = subscriber
            return True
        if isinstance(watching, set):
            watching.add(subscriber)
        elif watching is not subscriber:
            self._by_channel[channel] = {watching, subscriber}
        return False

    def remove(self, channel: str, subscriber: Subscriber) -> bool:
        """Whether the channel had ``subscriber`` as its last."""
        watching = self._by_channel.get(channel)
        if isinstance(watching, set):
            watching.discard(subscriber)
            if len(watching) == 1:
                self._by_channel[channel] = next(iter(watching))
            return False
        if watching is subscriber:
            del self._by_channel[channel]
            return True
        return False

    def of(self, channel: str) -> tuple[Subscriber, ...]:
        watching = self._by_channel.get(channel)
        if watching is None:
            return ()
        return tuple(watching) if isinstance(watching, set) else (watching,)

    def deliver(self, channel: bytes, data: bytes) -> None:
        """A job's event: decoded once, handed to every stream on its channel."""
        name = channel.decode()
        subscribers = self.of(name)
        if not subscribers:
            return
        try:
            event = decode_event(data)
        except WireError as e:
            log.error("fanout.malformed_event", channel=name, error=str(e))
            return
        for subscriber in subscribers:
            subscriber.deliver(event)


class EventFanout:
    def __init__(
        self, redis: RedisClient, names: Names, instance_id: str, *, timeout_s: float
    ) -> None:
        """``timeout_s`` bounds the wait for Redis to confirm a SUBSCRIBE that went out; one
        that cannot go out (the link is down) fails at once."""
        self._redis = redis
        self._names = names
        # Subscribed for good: PUBSUB NUMSUB of it tells whether this gateway's link is up. Not
        # on a cluster: there a link lives only while it has streams (PING finds a silent one
        # out), and an idle gateway needs no connection to every node.
        always = [] if is_cluster(redis) else [names.gateway_control_channel(instance_id)]
        self._watchers = Watchers()
        self._job_of: dict[str, str] = {}
        self._listener = listener_for(
            redis,
            channels=always,
            on_message=self._watchers.deliver,
            on_live=self._recover,
            confirm_timeout_s=timeout_s,
            log_area="fanout",
        )
        self._closed = False
        # Channels whose streams are held while their log is read, each with whether it was
        # live again once more since its read began (it is then read again).
        self._recovering: dict[str, bool] = {}
        self._to_backfill: deque[tuple[str, str, tuple[Subscriber, ...]]] = deque()
        self._backfilling: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def channel_count(self) -> int:
        return self._watchers.channel_count

    @property
    def subscriber_count(self) -> int:
        return sum(1 for _ in self._watchers)

    def subscribers(self) -> Iterator[Subscriber]:
        """Every open stream."""
        return iter(self._watchers)

    async def start(self) -> None:
        await self._listener.start()

    async def close(self) -> None:
        # Streams that end from here on queue nothing: closing the link unsubscribes them all.
        self._closed = True
        await self._listener.close()
        while self._background:
            await cancel_and_wait(next(iter(self._background)))

    async def subscribe(self, job_id: str, subscriber: Subscriber) -> None:
        """Add ``subscriber`` to the job's channel; returns once Redis confirms the channel."""
        channel = self._names.job_channel(job_id)
        self._watchers.add(channel, subscriber)
        self._job_of[channel] = job_id
        try:
            if self._closed:
                raise FanoutUnavailableError("the gateway is shutting down")
            try:
                await self._listener.subscribe(channel)
            except SubscribeError as e:
                raise FanoutUnavailableError(str(e)) from e
        except BaseException:
            self.unsubscribe(job_id, subscriber)
            raise

    def unsubscribe(self, job_id: str, subscriber: Subscriber) -> None:
        """Remove ``subscriber``. Synchronous, so it is safe in a cancelled handler's finally."""
        channel = self._names.job_channel(job_id)
        if self._watchers.remove(channel, subscriber):
            self._job_of.pop(channel, None)
            self._listener.unsubscribe(channel)

    def _recover(self, channels: Collection[str]) -> None:
        """``channels`` are live again: their streams hold live events back from now on (the
        next one may already be read after this call), until the log has handed them what the
        outage swallowed."""
        if self._closed:
            return
        for channel in channels:
            if channel in self._recovering:
                # Its read may have begun before this outage ended: it is read again.
                self._recovering[channel] = True
                continue
            job_id = self._job_of.get(channel)
            subscribers = self._watchers.of(channel)
            if job_id is None or not subscribers:
                continue
            for subscriber in subscribers:
                subscriber.hold_live()
            self._recovering[channel] = False
            self._to_backfill.append((channel, job_id, subscribers))
        if self._to_backfill and (self._backfilling is None or self._backfilling.done()):
            self._backfilling = asyncio.get_running_loop().create_task(self._backfill_held())
            self._background.add(self._backfilling)
            self._backfilling.add_done_callback(self._background.discard)

    async def _backfill_held(self) -> None:
        """Hand each held stream the events published while its channel was not live, from the
        replay log, merged with the live ones by seq: a few logs read at once."""
        recovered = 0
        while self._to_backfill:
            count = min(BACKFILL_CONCURRENCY, len(self._to_backfill))
            batch = [self._to_backfill.popleft() for _ in range(count)]
            await asyncio.gather(*(self._backfill(*held) for held in batch))
            recovered += count
        log.info("fanout.recovered", channels=recovered)

    async def _backfill(
        self, channel: str, job_id: str, subscribers: tuple[Subscriber, ...]
    ) -> None:
        # Held since: no stream of the channel has queued anything meanwhile.
        after = min(subscriber.queued_seq for subscriber in subscribers)
        logged: list[Event] = []
        try:
            while True:
                self._recovering[channel] = False
                try:
                    logged = await replay_log.read_after(self._redis, self._names, job_id, after)
                except Exception as e:
                    # Whatever failed, the streams are released: held, they would hang.
                    log.warning("fanout.backfill_failed", job_id=job_id, error=str(e))
                if not self._recovering[channel]:
                    break
        finally:
            # Otherwise the channel's next recovery would wait for this one for good.
            del self._recovering[channel]
        for subscriber in subscribers:
            subscriber.release_live(logged)
