"""One Redis pub/sub connection, kept alive: the gateway's fanout and the worker's cancel
listener are each built on one.

The listener owns its connection and every connect: nothing else can reconnect it behind its
back (redis-py's ``PubSub`` retries a command by reconnecting, which here would leave the
listener reading a link it did not subscribe). Each connection is a new one (``connect``: with
the client's pool settings, or a cluster node's), so whatever still holds a lost one cannot
touch the next. Channels are joined and left in batches (``shared.pubsub_subscriptions``), and
a caller can wait for Redis to confirm one. Each message goes to its owner's callback, read
straight off the connection: ``PubSub.get_message`` wraps each read in a health check, a retry
wrapper and a metrics hook and builds a dict, most of a gateway's cost of reading a message.

A link that dies without a word (a host gone, a partition) is found out by a ping: after
``LIVENESS_S`` with no reply the listener pings, and a pong as late means the link is dead.
Whatever ends a connection (an error, silence, a bug in the owner's callback), the listener
logs it and starts again on a fresh connection that subscribes every wanted channel in one
write; once Redis has answered all of it, the owner is told which channels are live again
(``on_live``) so that it can catch up on what the outage swallowed. The listener never ends on
its own.

On a Redis Cluster the same listener is one link to one node, with sharded channels
(``SSUBSCRIBE``), joined and left one command per slot (Redis refuses a command whose channels
span slots): :class:`shared.shard_listener.ShardedListener` owns one per node and routes the
channels. There, Redis may refuse a join (``MOVED``: the slot is elsewhere) or drop a channel
unasked (``sunsubscribe``: its slot moved away); either costs those channels only, which the
listener hands back to its router (:class:`ShardHooks`). Anywhere else any error ends the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
from collections.abc import Callable, Collection, Iterable, Set
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from shared.logging import get_logger
from shared.pubsub_replies import PLAIN, PONG, SHARDED, InFlight, Sent, commands_for
from shared.pubsub_subscriptions import Subscriptions
from shared.tasks import cancel_and_wait, start_shared_task

log = get_logger(__name__)

RETRY_S = 0.5
# While a link stays down, its first failure is logged and then every this many after (about
# every 10 s): the listener keeps trying every RETRY_S, and each line counts the failures.
LOG_EVERY_FAILURES = 20
# After this long without a reply the link is pinged; when the pong is as late, it is dead.
LIVENESS_S = 2.0


class SubscribeError(Exception):
    """Redis could not take a subscription, or did not confirm it in time."""


class LinkSilentError(Exception):
    """The link gave no reply, not even to a ping."""


class UnexpectedReplyError(RedisError):
    """Redis sent what answers no command in flight: the link starts again."""


@dataclass(frozen=True, slots=True)
class ShardHooks:
    """What makes a listener one link to one node of a Redis Cluster."""

    node: str
    slot_of: Callable[[str], int]
    # Redis serves these channels here no more: their slot moved, or their join was refused.
    # The second argument is whether they had been subscribed (they may have missed messages).
    on_moved: Callable[[list[str], bool], None]
    # The link was lost (its node may be down for good, and its slots taken over).
    on_down: Callable[[], None]


class Liveness(enum.Enum):
    ALIVE = enum.auto()
    PING = enum.auto()
    DEAD = enum.auto()


def worth_logging(failures: int) -> bool:
    """Whether the ``failures``-th failure in a row of something retried every ``RETRY_S`` is
    logged: the first, then one in ``LOG_EVERY_FAILURES``."""
    return failures % LOG_EVERY_FAILURES == 1


def liveness(*, heard: bool, pinged: bool, late: bool) -> Liveness:
    """What one check, ``LIVENESS_S`` after the last, makes of the link: ``heard`` is whether a
    reply came since, ``pinged`` whether the last check pinged. A check that ran late (a busy
    event loop) cannot tell a silent link from a reply not read yet: it only starts over."""
    if heard or late:
        return Liveness.ALIVE
    return Liveness.DEAD if pinged else Liveness.PING


class PubSubListener:
    """``channels`` are subscribed for the listener's whole life; ``on_message(channel, data)``
    gets each message, as bytes; ``on_live(channels)`` is called each time the listener is live
    again after an outage, with the channels subscribed again. ``connect`` makes each new
    connection. ``log_area`` prefixes the listener's log events (``<area>.listener_error``,
    ``<area>.link_silent``, ...). ``confirm_timeout_s`` bounds :meth:`subscribe`'s wait.
    ``shard`` makes it a link to one node of a Redis Cluster."""

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        *,
        channels: Iterable[str] = (),
        on_message: Callable[[bytes, bytes], None],
        on_live: Callable[[Collection[str]], None],
        log_area: str,
        confirm_timeout_s: float = 5.0,
        shard: ShardHooks | None = None,
    ) -> None:
        self._connect = connect
        self._on_message = on_message
        self._on_live = on_live
        self._confirm_timeout_s = confirm_timeout_s
        self._area = log_area
        self._shard = shard
        self._verbs = PLAIN if shard is None else SHARDED
        self._slot_of = None if shard is None else shard.slot_of
        self._log: Any = log if shard is None else log.bind(node=shard.node)
        self._subscriptions = Subscriptions()
        self._subscriptions.wanted.update(channels)
        self._in_flight = InFlight()
        # Channels joined with ``reviving``, whose confirmation on_live is told of.
        self._reviving: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[None] | None = None
        # Attempts that failed since the link was last up.
        self._failures = 0
        self._closed = False
        # The connection commands may be sent on: set once its first SUBSCRIBE is sent.
        self._link: AbstractConnection | None = None
        # Sends the queued joins and leaves, and pings, one batch after another.
        self._sender: asyncio.Task[None] | None = None
        self._ping_due = False
        # The liveness check, a timer: the reader sets ``_heard`` at each reply, the check
        # clears it. It ends a dead connection through ``_deadline``.
        self._heard = False
        self._pinged = False
        self._check: asyncio.TimerHandle | None = None
        self._check_due = 0.0
        self._deadline: asyncio.Timeout | None = None

    @property
    def channels(self) -> Set[str]:
        """The channels wanted on this listener."""
        return self._subscriptions.wanted

    def launch(self) -> None:
        """Start listening, without waiting for the first attempt to connect."""
        if self._task is None:
            self._first_attempt = asyncio.get_running_loop().create_future()
            self._task = start_shared_task(self._run(), f"{self._area}-listener")

    async def start(self) -> None:
        """Start listening; returns after the first attempt to connect, whether it worked or
        not (the listener goes on trying)."""
        self.launch()
        assert self._first_attempt is not None
        await asyncio.shield(self._first_attempt)

    async def close(self) -> None:
        # Whatever is still queued is dropped: closing the connection leaves every channel.
        self._closed = True
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._sender)
        self._subscriptions.link_lost()
        self._settle_first_attempt()

    async def subscribe(self, channel: str) -> None:
        """Want ``channel``; returns once Redis has confirmed it, so that no message published
        after can be missed. Raises :class:`SubscribeError` at once when its SUBSCRIBE cannot
        go out, or after the confirm timeout; the channel stays wanted (by whoever else wants
        it) until :meth:`unsubscribe`."""
        if self._closed:
            raise SubscribeError("the listener is closed")
        confirmed = self.join(channel)
        if confirmed is None:
            return
        try:
            async with asyncio.timeout(self._confirm_timeout_s):
                # Shielded: several callers may wait for one confirmation.
                taken = await asyncio.shield(confirmed)
        except TimeoutError as e:
            raise SubscribeError(f"Redis did not confirm {channel}") from e
        if not taken:
            raise SubscribeError(f"Redis did not take {channel}")

    def join(self, channel: str, *, reviving: bool = False) -> asyncio.Future[bool] | None:
        """Want ``channel``; returns what resolves to whether Redis took it, or None when it
        has already. ``reviving``: the channel lost its subscription elsewhere, and
        ``on_live`` is told as soon as Redis confirms it here, before any of its messages."""
        confirmed = self._subscriptions.want(channel)
        if confirmed is not None:
            if reviving:
                self._reviving.add(channel)
            self._send_soon()
        elif reviving:
            self._on_live([channel])
        return confirmed

    def unsubscribe(self, channel: str) -> None:
        """No longer want ``channel``. Synchronous, so it is safe in a cancelled task's
        ``finally``."""
        if self._closed:
            return
        self._subscriptions.drop(channel)
        self._reviving.discard(channel)
        self._send_soon()

    async def _run(self) -> None:
        outage = False
        while True:
            try:
                await self._serve(outage=outage)
            except LinkSilentError:
                self._log.warning(f"{self._area}.link_silent", silent_s=2 * LIVENESS_S)
            except (RedisError, OSError) as e:
                self._failures += 1
                if worth_logging(self._failures):
                    self._log.warning(
                        f"{self._area}.listener_error",
                        error=str(e),
                        retry_in_s=RETRY_S,
                        failures=self._failures,
                    )
            except Exception:
                # A listener that ended would leave its owner deaf until a restart, whatever
                # went wrong: it starts again on a fresh connection.
                self._log.exception(f"{self._area}.listener_failed", retry_in_s=RETRY_S)
            self._settle_first_attempt()
            if self._shard is not None:
                self._shard.on_down()
            outage = True
            await asyncio.sleep(RETRY_S)

    async def _serve(self, *, outage: bool) -> None:
        """Connect, subscribe every wanted channel, and read until the connection ends."""
        link = self._connect()
        try:
            self._start_checks()
            async with asyncio.timeout(None) as self._deadline:
                await link.connect()  # type: ignore[no-untyped-call]
                self._in_flight.clear()
                if outage:
                    # The resubscription tells of every channel.
                    self._reviving.clear()
                channels = self._subscriptions.resubscribe()
                if channels:
                    commands = commands_for(self._verbs, channels, self._slot_of, reviving=outage)
                    await self._write(link, commands)
                self._link = link
                self._failures = 0
                if self._subscriptions.queued:
                    self._send_soon()
                self._settle_first_attempt()
                if outage and not channels:
                    self._on_live(())
                await self._read(link)
        except TimeoutError as e:
            if self._deadline is not None and self._deadline.expired():
                raise LinkSilentError from e
            raise
        finally:
            self._stop_checks()
            self._link = None
            self._subscriptions.link_lost()
            # Not waiting for the close: a dead link may never finish it.
            with contextlib.suppress(RedisError, OSError):
                await link.disconnect(nowait=True)
            # A send can wait on a dead link for good; the next connection needs a sender.
            await cancel_and_wait(self._sender)

    async def _read(self, link: AbstractConnection) -> None:
        on_message = self._on_message
        message = self._verbs.message
        while True:
            try:
                # disable_decoding: replies stay bytes, whatever the client decodes.
                # push_request: under RESP3, messages are pushes, which redis-py would
                # otherwise hand to its push handler and drop.
                reply = await link.read_response(
                    timeout=math.inf, disable_decoding=True, push_request=True
                )
            except ResponseError as e:
                self._heard = True
                self._refused(e)
                continue
            self._heard = True
            if reply is None:
                # What redis-py makes of a read that ended in a socket timeout (ETIMEDOUT: the
                # link died with writes unacknowledged).
                raise RedisConnectionError("the pub/sub link timed out")
            if reply[0] == message:
                on_message(reply[1], reply[2])
            else:
                self._answered(reply)

    def _answered(self, reply: Any) -> None:
        """A reply that is not a message: a join's or a leave's, a pong, or (on a cluster) a
        channel dropped because its slot moved."""
        verbs = self._verbs
        if isinstance(reply, list):
            kind, channel = reply[0], reply[1].decode() if reply[1] else None
        else:
            # A PING's reply on a connection subscribed to nothing, or under RESP3.
            kind, channel = reply.lower() if isinstance(reply, bytes) else b"", None
        sent = self._in_flight.answer(kind, channel)
        if sent is None:
            if kind == verbs.left and channel is not None:
                self._dropped(channel)
                return
            raise UnexpectedReplyError(f"a reply that answers nothing sent: {kind!r}")
        if kind == verbs.joined and channel is not None:
            self._subscriptions.confirmed(channel)
            if self._reviving and channel in self._reviving:
                self._reviving.discard(channel)
                self._on_live([channel])
        if sent.revival is not None and sent.done:
            self._revived(sent.revival)

    def _refused(self, error: ResponseError) -> None:
        """An error reply: on a cluster, the command it answers fails alone."""
        shard = self._shard
        sent = self._in_flight.refuse(error)
        if shard is None or (sent is not None and sent.answer == PONG):
            raise error
        if sent is None:
            return
        if sent.answer == self._verbs.joined:
            self._log.warning(
                f"{self._area}.subscribe_refused", channels=len(sent.channels), error=str(error)
            )
            self._subscriptions.forget(sent.channels)
            self._reviving.difference_update(sent.channels)
            shard.on_moved(sent.channels, sent.reviving)
        # A leave refused (MOVED) finds its channel's slot gone from this node, which holds the
        # channel no more: what the leave was for.
        if sent.revival is not None:
            self._revived(sent.revival)

    def _dropped(self, channel: str) -> None:
        """Redis dropped ``channel`` unasked: on a cluster, its slot moved to another node."""
        if channel not in self._subscriptions.wanted:
            return
        if self._shard is None:
            raise UnexpectedReplyError(f"Redis dropped {channel} unasked")
        self._log.info(f"{self._area}.channel_moved", channel=channel)
        self._subscriptions.forget([channel])
        self._reviving.discard(channel)
        self._shard.on_moved([channel], True)

    def _revived(self, channels: list[str]) -> None:
        """Redis has answered the whole resubscription of a new connection."""
        wanted = self._subscriptions.wanted
        self._on_live([channel for channel in channels if channel in wanted])

    async def _write(self, link: AbstractConnection, commands: list[Sent]) -> None:
        """Send ``commands`` in one write; each is in flight from before it can be answered."""
        for command in commands:
            self._in_flight.sent(command)
        packed = link.pack_commands([(command.command, *command.channels) for command in commands])
        await link.send_packed_command(packed, check_health=False)

    def _send_soon(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_queued())

    async def _send_queued(self) -> None:
        """Send what is queued on the current connection, if there is one; a connection made
        later subscribes every wanted channel by itself."""
        # Whatever is queued in this turn of the loop goes in the same command.
        await asyncio.sleep(0)
        while (link := self._link) is not None:
            leaves, joins = self._subscriptions.take_batch()
            ping, self._ping_due = self._ping_due, False
            if not (leaves or joins or ping):
                return
            commands: list[Sent] = []
            if leaves:
                commands += commands_for(self._verbs, leaves, self._slot_of, leave=True)
            if joins:
                commands += commands_for(self._verbs, joins, self._slot_of)
            if ping:
                # Its pong comes to the reader like any reply; one that cannot go out leaves
                # the link to the next check.
                commands.append(Sent("PING", PONG, []))
            if error := await self._send(link, commands):
                if self._closed:
                    # Closed meanwhile (a cluster link with no channel left): closing the
                    # connection leaves every channel, so nothing failed.
                    return
                # A broken link: the next connection subscribes only what is wanted.
                if leaves:
                    self._log.warning(
                        f"{self._area}.unsubscribe_failed", channels=len(leaves), error=error
                    )
                if joins:
                    self._log.warning(
                        f"{self._area}.subscribe_failed", channels=len(joins), error=error
                    )
                    self._subscriptions.not_sent(joins)

    async def _send(self, link: AbstractConnection, commands: list[Sent]) -> str | None:
        """Sends ``commands`` on ``link``, which must still be the current one (a send on a
        closed connection would connect it again); returns why it could not, or None."""
        if link is not self._link or not link.is_connected:
            return "the connection is gone"
        try:
            await self._write(link, commands)
        except Exception as e:
            # Any failure to send is a failed send: besides the link's own errors, a send that
            # a closing connection overtakes meets its writer gone (AttributeError). redis-py
            # closes the connection; the reader finds out.
            return str(e) or type(e).__name__
        return None

    def _start_checks(self) -> None:
        self._heard = False
        self._pinged = False
        self._ping_due = False
        self._arm_check()

    def _stop_checks(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None

    def _arm_check(self) -> None:
        loop = asyncio.get_running_loop()
        self._check_due = loop.time() + LIVENESS_S
        self._check = loop.call_at(self._check_due, self._check_liveness)

    def _check_liveness(self) -> None:
        now = asyncio.get_running_loop().time()
        late = now - self._check_due > LIVENESS_S / 2
        self._arm_check()
        verdict = liveness(heard=self._heard, pinged=self._pinged, late=late)
        self._heard = False
        self._pinged = verdict is Liveness.PING
        if verdict is Liveness.PING:
            self._ping_due = True
            self._send_soon()
        elif verdict is Liveness.DEAD and self._deadline and not self._deadline.expired():
            # Ends the connection's task where it waits, even on a read that closing the
            # socket would not wake (it holds unsent data, as on a real partition).
            self._deadline.reschedule(now)

    def _settle_first_attempt(self) -> None:
        if self._first_attempt is not None and not self._first_attempt.done():
            self._first_attempt.set_result(None)
