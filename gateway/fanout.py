"""The gateway's one Redis pub/sub connection, shared by all of its streams.

A registry maps each job channel to the streams watching it. The channel is subscribed when its
first stream arrives (and the caller waits for Redis to confirm, so no event published after
that can be missed) and unsubscribed when its last stream leaves. Each message is decoded and
encoded once, then handed to every stream on its channel. A link that goes silent without
closing is found out by a ping, and the listener is started again on a fresh connection, which
backfills.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict, deque
from collections.abc import Coroutine
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared import replay_log
from shared.events import Event, decode_event
from shared.logging import get_logger
from shared.names import Names
from shared.tasks import cancel_and_wait
from shared.wire import WireError

log = get_logger(__name__)

LISTENER_RETRY_S = 0.5
# A link that died without a word (a host gone, a partition) would leave every stream waiting
# for events that never come: after this long without a reply the link is pinged, and when the
# pong is as late the listener starts again on a fresh connection.
LIVENESS_S = 2.0


class Subscriber(Protocol):
    @property
    def queued_seq(self) -> int: ...

    def deliver(self, frame: Event) -> None: ...

    def hold_live(self) -> None: ...

    def release_live(self, replayed: list[Event]) -> None: ...


class FanoutUnavailableError(ConnectionError):
    """Redis could not take a subscription, or did not confirm it in time."""


class EventFanout:
    def __init__(self, redis: Redis, names: Names, instance_id: str, *, timeout_s: float) -> None:
        """``timeout_s`` bounds the wait for Redis to confirm a SUBSCRIBE that went out; one
        that cannot go out (the link is down) fails at once."""
        if redis.get_encoder().decode_responses:  # type: ignore[no-untyped-call]
            # The listener matches replies by their raw bytes (b"message").
            raise ValueError("the fanout needs a Redis client that does not decode responses")
        self._redis = redis
        self._names = names
        self._control_channel = names.gateway_control_channel(instance_id)
        self._control_channel_bytes = self._control_channel.encode()
        self._timeout_s = timeout_s
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        # Per channel, its stream, or a set of them when several watch one job (rare: a set is
        # about 200 bytes, which ten thousand idle streams would each pay for).
        self._subscribers: dict[str, Subscriber | set[Subscriber]] = {}
        # Channels Redis was last asked to subscribe (and not asked to leave since).
        self._subscribed: set[str] = set()
        # Per channel, the SUBSCRIBEs sent and not yet confirmed, oldest first; each resolves
        # to True once Redis confirms it, False if it could not be sent.
        self._confirmations: defaultdict[str, deque[asyncio.Future[bool]]] = defaultdict(deque)
        # Channels whose streams came or went since the last flush, in order, each with the
        # confirmation its next SUBSCRIBE will resolve (None for a leave).
        self._queued: dict[str, asyncio.Future[bool] | None] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self._job_of: dict[str, str] = {}
        # The liveness check, a timer rather than a task: the listener sets ``_heard`` at each
        # reply, the check clears it; ``_pinged_at`` is the loop time of an unanswered ping.
        self._heard = False
        self._pinged_at: float | None = None
        # The listener is in its read loop (not waiting to reconnect).
        self._reading = False
        self._restarting: asyncio.Task[None] | None = None
        self._liveness: asyncio.TimerHandle | None = None
        self._liveness_due = 0.0

    @property
    def channel_count(self) -> int:
        return len(self._subscribers)

    @property
    def subscriber_count(self) -> int:
        return sum(
            len(watching) if isinstance(watching, set) else 1
            for watching in self._subscribers.values()
        )

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        # Subscribing here creates the one connection before anything else can race to do it.
        # The control channel keeps the link subscribed while no stream is open.
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.subscribe(self._control_channel)
        self._listener = asyncio.create_task(self._listen(), name="fanout-listener")
        self._arm_liveness()

    async def close(self) -> None:
        # Streams that end from here on queue nothing: closing the link unsubscribes them all.
        self._closed = True
        if self._liveness is not None:
            self._liveness.cancel()
        await cancel_and_wait(self._restarting)
        await cancel_and_wait(self._listener)
        await cancel_and_wait(self._flusher)
        while self._background:
            await cancel_and_wait(next(iter(self._background)))
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def subscribe(self, job_id: str, subscriber: Subscriber) -> None:
        """Add ``subscriber`` to the job's channel; returns once Redis confirms the channel."""
        channel = self._names.job_channel(job_id)
        watching = self._subscribers.get(channel)
        if watching is None:
            self._subscribers[channel] = subscriber
        elif isinstance(watching, set):
            watching.add(subscriber)
        elif watching is not subscriber:
            self._subscribers[channel] = {watching, subscriber}
        self._job_of[channel] = job_id
        try:
            confirmed = self._confirmation_of(channel)
            if confirmed is not None:
                await self._wait_confirmed(channel, confirmed)
        except BaseException:
            self.unsubscribe(job_id, subscriber)
            raise

    def unsubscribe(self, job_id: str, subscriber: Subscriber) -> None:
        """Remove ``subscriber``. Synchronous, so it is safe in a cancelled handler's finally."""
        channel = self._names.job_channel(job_id)
        watching = self._subscribers.get(channel)
        if isinstance(watching, set):
            watching.discard(subscriber)
            if len(watching) == 1:
                self._subscribers[channel] = next(iter(watching))
        elif watching is subscriber:
            del self._subscribers[channel]
            self._job_of.pop(channel, None)
            if not self._closed:
                self._queued.setdefault(channel, None)
                self._schedule_flush()

    def _confirmation_of(self, channel: str) -> asyncio.Future[bool] | None:
        """What a new stream on ``channel`` waits for: the channel's latest SUBSCRIBE, sent or
        queued; None when Redis has already confirmed it."""
        if channel in self._subscribed:
            pending = self._confirmations.get(channel)
            return pending[-1] if pending else None
        if self._closed:
            raise FanoutUnavailableError("the gateway is shutting down")
        confirmed = self._queued.get(channel)
        if confirmed is None:
            confirmed = asyncio.get_running_loop().create_future()
            self._queued[channel] = confirmed
            self._schedule_flush()
        return confirmed

    async def _wait_confirmed(self, channel: str, confirmed: asyncio.Future[bool]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                taken = await asyncio.shield(confirmed)
        except TimeoutError as e:
            raise FanoutUnavailableError(f"Redis did not confirm {channel}") from e
        if not taken:
            raise FanoutUnavailableError(f"Redis did not take {channel}")

    def _schedule_flush(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Bring Redis in line with the registry: every queued join in one SUBSCRIBE, every
        queued leave in one UNSUBSCRIBE. One flush runs at a time and each takes the queue as
        it finds it, so a leave and a rejoin of the same channel go out in order; Redis
        confirms each channel of a SUBSCRIBE in order, matched FIFO in :meth:`_on_reply`."""
        assert self._pubsub is not None
        # Streams opening in this turn of the loop join the same command.
        await asyncio.sleep(0)
        while self._queued:
            queued, self._queued = self._queued, {}
            joins: list[str] = []
            leaves: list[str] = []
            for channel, confirmed in queued.items():
                wanted = channel in self._subscribers
                if wanted and channel not in self._subscribed:
                    # None only if its streams joined a SUBSCRIBE that then failed to go out.
                    loop = asyncio.get_running_loop()
                    self._confirmations[channel].append(confirmed or loop.create_future())
                    self._subscribed.add(channel)
                    joins.append(channel)
                elif not wanted and channel in self._subscribed:
                    self._subscribed.discard(channel)
                    leaves.append(channel)
                elif confirmed is not None and not confirmed.done():
                    # Its streams left before it went out.
                    confirmed.set_result(False)
            if leaves:
                await self._unsubscribe(leaves)
            if joins:
                await self._subscribe(joins)

    async def _subscribe(self, channels: list[str]) -> None:
        assert self._pubsub is not None
        try:
            await self._pubsub.subscribe(*channels)
        except Exception as e:
            # Any failure to send is a failed send: besides the link's own errors, redis-py can
            # drop the connection under a send while the listener reconnects (AttributeError).
            log.warning("fanout.subscribe_failed", channels=len(channels), error=str(e))
            for channel in channels:
                self._subscribed.discard(channel)
                # The newest: this flush's, the only one of the channel's not sent.
                self._settle_confirmation(channel, confirmed=False)

    async def _unsubscribe(self, channels: list[str]) -> None:
        assert self._pubsub is not None
        try:
            await self._pubsub.unsubscribe(*channels)
        except Exception as e:
            # The channels' messages are dropped in _deliver; a broken link drops them anyway.
            log.warning("fanout.unsubscribe_failed", channels=len(channels), error=str(e))

    async def _listen(self, *, recovering: bool = False) -> None:
        assert self._pubsub is not None
        pubsub = self._pubsub
        while True:
            try:
                if not pubsub.subscribed:
                    await pubsub.subscribe(self._control_channel)
                link = pubsub.connection
                assert link is not None, "subscribing connects"
                if not link.is_connected:
                    # Connecting resubscribes every channel (redis-py's connect callback), in
                    # one command, so all of them at once.
                    await link.connect()
                self._reading = True
                while True:
                    # Straight off the connection: PubSub.get_message wraps each read in a
                    # health check, a retry wrapper and a metrics hook and builds a dict, about
                    # three quarters of the gateway's cost of reading a message
                    # (docs/performance.md, sixth pass). A read error drops the connection.
                    # push_request: under RESP3 (the gateway's client speaks RESP2) messages are
                    # pushes, which redis-py would otherwise hand to its push handler and drop.
                    reply = await link.read_response(timeout=math.inf, push_request=True)
                    self._heard = True
                    if reply is None:
                        # What redis-py makes of a read that ended in a socket timeout
                        # (ETIMEDOUT: the link died with writes unacknowledged).
                        await link.disconnect(nowait=True)
                        raise RedisConnectionError("the pub/sub link timed out")
                    if recovering and reply[:2] == [b"subscribe", self._control_channel_bytes]:
                        # The control channel's confirmation on the new connection: Redis has
                        # run the resubscription of every channel (one SUBSCRIBE, in which only
                        # it names the control channel), so fetch what the outage swallowed.
                        recovering = False
                        self._spawn(self._backfill_all())
                    if reply[0] == b"message":
                        self._deliver(reply[1], reply[2])
                    else:
                        # Confirmations, mostly: redis-py keeps its record of the channels.
                        self._on_reply(await pubsub.handle_message(reply))
            except Exception as e:
                recovering = True
                self._reading = False
                if isinstance(e, RedisError | OSError):
                    log.warning("fanout.listener_error", error=str(e), retry_in_s=LISTENER_RETRY_S)
                else:
                    # Whatever else went wrong, a listener that ended would leave every stream
                    # deaf until a restart: start again on a fresh connection, and backfill.
                    log.exception("fanout.listener_failed", retry_in_s=LISTENER_RETRY_S)
                    if pubsub.connection is not None:
                        with contextlib.suppress(RedisError, OSError):
                            await pubsub.connection.disconnect(nowait=True)
                await asyncio.sleep(LISTENER_RETRY_S)

    def _arm_liveness(self) -> None:
        loop = asyncio.get_running_loop()
        self._liveness_due = loop.time() + LIVENESS_S
        self._liveness = loop.call_at(self._liveness_due, self._check_liveness)

    def _check_liveness(self) -> None:
        # A check that ran late (a busy loop) cannot tell a silent link from a reply not yet
        # read: it only starts over.
        now = asyncio.get_running_loop().time()
        late = now - self._liveness_due > LIVENESS_S / 2
        self._arm_liveness()
        if self._restarting is not None and not self._restarting.done():
            return
        if self._listener is None or self._listener.done():
            # It can only have ended on a bug: never leave the streams without one.
            self._restart()
        elif self._heard or late or not self._reading:
            # Alive, or unsure, or the listener is reconnecting by itself.
            self._heard = False
            self._pinged_at = None
        elif self._pinged_at is None:
            self._pinged_at = now
            self._ping()
        else:
            self._pinged_at = None
            log.warning("fanout.link_silent", silent_s=2 * LIVENESS_S)
            self._restart()

    def _ping(self) -> None:
        assert self._pubsub is not None
        link = self._pubsub.connection
        # Packed by redis-py, but straight into the socket's buffer: its send path waits for the
        # buffer to drain and, when it times out, closes whatever connection the link holds by
        # then (a fresh one, after a restart). Its pong comes to the listener like any reply; a
        # ping that cannot go out is the next check's business.
        writer = link._writer if link is not None else None
        if link is not None and writer is not None and not writer.is_closing():
            writer.writelines(link.pack_command("PING"))

    def _restart(self) -> None:
        self._restarting = asyncio.get_running_loop().create_task(self._restart_listener())

    async def _restart_listener(self) -> None:
        """Cancelling the listener's read (rather than closing the link under it, which does not
        wake a read while the socket holds unsent data) drops its connection; the new listener
        connects afresh, which resubscribes every channel, and backfills."""
        if self._heard and self._listener is not None and not self._listener.done():
            # The pong was read after all (the loop was busy when the check ran).
            return
        await cancel_and_wait(self._listener)
        self._reading = False
        try:
            assert self._pubsub is not None
            link = self._pubsub.connection
            if link is not None and link.is_connected:
                with contextlib.suppress(Exception):
                    await link.disconnect(nowait=True)
        finally:
            if not self._closed:
                self._listener = asyncio.create_task(
                    self._listen(recovering=True), name="fanout-listener"
                )

    async def _backfill_all(self) -> None:
        """Hand every stream the events published while the link was down, from the replay log,
        merged with the live ones by seq."""
        await self._leave_stale_channels()
        for channel, job_id in list(self._job_of.items()):
            subscribers = self._watchers(channel)
            if not subscribers:
                continue
            for subscriber in subscribers:
                subscriber.hold_live()
            after = min(subscriber.queued_seq for subscriber in subscribers)
            try:
                logged = await replay_log.read_after(self._redis, self._names, job_id, after)
            except RedisError as e:
                log.warning("fanout.backfill_failed", job_id=job_id, error=str(e))
                logged = []
            for subscriber in subscribers:
                subscriber.release_live(logged)
        log.info("fanout.recovered", channels=len(self._job_of))

    async def _leave_stale_channels(self) -> None:
        """Reconnecting resubscribed every channel redis-py still listed, including those whose
        UNSUBSCRIBE the outage swallowed before Redis confirmed it: leave those again."""
        assert self._pubsub is not None
        listed = (c.decode() if isinstance(c, bytes) else c for c in self._pubsub.channels)
        stale = [c for c in listed if c != self._control_channel and c not in self._subscribed]
        if stale:
            await self._unsubscribe(stale)

    def _watchers(self, channel: str) -> tuple[Subscriber, ...]:
        watching = self._subscribers.get(channel)
        if watching is None:
            return ()
        return tuple(watching) if isinstance(watching, set) else (watching,)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        """A job's event: decoded and framed once, handed to every stream on its channel."""
        name = channel.decode()
        subscribers = self._watchers(name)
        if not subscribers:
            return
        try:
            frame = decode_event(data)
        except WireError as e:
            log.error("fanout.malformed_event", channel=name, error=str(e))
            return
        for subscriber in subscribers:
            subscriber.deliver(frame)

    def _on_reply(self, message: dict[str, Any] | None) -> None:
        if message is not None and message["type"] == "subscribe":
            self._settle_confirmation(message["channel"].decode(), confirmed=True)

    def _settle_confirmation(self, channel: str, *, confirmed: bool) -> None:
        """Redis confirmed the channel's oldest SUBSCRIBE; or its newest could not be sent."""
        pending = self._confirmations.get(channel)
        if not pending:
            return
        future = pending.popleft() if confirmed else pending.pop()
        if not pending:
            del self._confirmations[channel]
        if not future.done():
            future.set_result(confirmed)
