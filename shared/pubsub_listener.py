"""One Redis pub/sub connection, kept alive: the gateway's fanout and the worker's cancel
listener are each built on one.

The listener owns its connection and every connect: nothing else can reconnect it behind its
back (redis-py's ``PubSub`` retries a command by reconnecting, which here would leave the
listener reading a link it did not subscribe). Each connection is a new one from the client's
pool settings, so whatever still holds a lost one cannot touch the next. Channels are joined
and left in batches (``shared.pubsub_subscriptions``), and a caller can wait for Redis to
confirm one. Each message goes to its owner's callback, read straight off the connection:
``PubSub.get_message`` wraps each read in a health check, a retry wrapper and a metrics hook
and builds a dict, most of a gateway's cost of reading a message.

A link that dies without a word (a host gone, a partition) is found out by a ping: after
``LIVENESS_S`` with no reply the listener pings, and a pong as late means the link is dead.
Whatever ends a connection (an error, silence, a bug in the owner's callback), the listener
logs it and starts again on a fresh connection that subscribes every wanted channel in one
command; once Redis confirms it, the owner is told (``on_live``) so that it can catch up on what
the outage swallowed. The listener never ends on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
from collections.abc import Callable, Iterable

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.logging import get_logger
from shared.pubsub_subscriptions import Subscriptions
from shared.redis_client import RedisClient
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

RETRY_S = 0.5
# After this long without a reply the link is pinged; when the pong is as late, it is dead.
LIVENESS_S = 2.0


class SubscribeError(Exception):
    """Redis could not take a subscription, or did not confirm it in time."""


class LinkSilentError(Exception):
    """The link gave no reply, not even to a ping."""


class Liveness(enum.Enum):
    ALIVE = enum.auto()
    PING = enum.auto()
    DEAD = enum.auto()


def liveness(*, heard: bool, pinged: bool, late: bool) -> Liveness:
    """What one check, ``LIVENESS_S`` after the last, makes of the link: ``heard`` is whether a
    reply came since, ``pinged`` whether the last check pinged. A check that ran late (a busy
    event loop) cannot tell a silent link from a reply not read yet: it only starts over."""
    if heard or late:
        return Liveness.ALIVE
    return Liveness.DEAD if pinged else Liveness.PING


class PubSubListener:
    """``channels`` are subscribed for the listener's whole life; ``on_message(channel, data)``
    gets each message, as bytes; ``on_live()`` is called each time the listener is live again
    after an outage. ``log_area`` prefixes the listener's log events (``<area>.listener_error``,
    ``<area>.link_silent``, ...). ``confirm_timeout_s`` bounds :meth:`subscribe`'s wait."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        channels: Iterable[str] = (),
        on_message: Callable[[bytes, bytes], None],
        on_live: Callable[[], None],
        log_area: str,
        confirm_timeout_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._on_message = on_message
        self._on_live = on_live
        self._confirm_timeout_s = confirm_timeout_s
        self._area = log_area
        self._subscriptions = Subscriptions()
        self._subscriptions.wanted.update(channels)
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[None] | None = None
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

    async def start(self) -> None:
        """Start listening; returns after the first attempt to connect, whether it worked or
        not (the listener goes on trying)."""
        self._first_attempt = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"{self._area}-listener")
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
        confirmed = self._subscriptions.want(channel)
        if confirmed is None:
            return
        self._send_soon()
        try:
            async with asyncio.timeout(self._confirm_timeout_s):
                # Shielded: several callers may wait for one confirmation.
                taken = await asyncio.shield(confirmed)
        except TimeoutError as e:
            raise SubscribeError(f"Redis did not confirm {channel}") from e
        if not taken:
            raise SubscribeError(f"Redis did not take {channel}")

    def unsubscribe(self, channel: str) -> None:
        """No longer want ``channel``. Synchronous, so it is safe in a cancelled task's
        ``finally``."""
        if self._closed:
            return
        self._subscriptions.drop(channel)
        self._send_soon()

    async def _run(self) -> None:
        outage = False
        while True:
            try:
                await self._serve(outage=outage)
            except LinkSilentError:
                log.warning(f"{self._area}.link_silent", silent_s=2 * LIVENESS_S)
            except (RedisError, OSError) as e:
                log.warning(f"{self._area}.listener_error", error=str(e), retry_in_s=RETRY_S)
            except Exception:
                # A listener that ended would leave its owner deaf until a restart, whatever
                # went wrong: it starts again on a fresh connection.
                log.exception(f"{self._area}.listener_failed", retry_in_s=RETRY_S)
            self._settle_first_attempt()
            outage = True
            await asyncio.sleep(RETRY_S)

    async def _serve(self, *, outage: bool) -> None:
        """Connect, subscribe every wanted channel, and read until the connection ends."""
        pool = self._redis.connection_pool
        link: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            self._start_checks()
            async with asyncio.timeout(None) as self._deadline:
                await link.connect()  # type: ignore[no-untyped-call]
                channels = self._subscriptions.resubscribe()
                if channels:
                    await link.send_command("SUBSCRIBE", *channels, check_health=False)
                self._link = link
                if self._subscriptions.queued:
                    self._send_soon()
                self._settle_first_attempt()
                if outage and not channels:
                    self._on_live()
                await self._read(link, telling_live=outage and bool(channels))
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

    async def _read(self, link: AbstractConnection, *, telling_live: bool) -> None:
        on_message = self._on_message
        while True:
            # disable_decoding: replies stay bytes, whatever the client decodes. push_request:
            # under RESP3, messages are pushes, which redis-py would otherwise hand to its push
            # handler and drop.
            reply = await link.read_response(
                timeout=math.inf, disable_decoding=True, push_request=True
            )
            self._heard = True
            if reply is None:
                # What redis-py makes of a read that ended in a socket timeout (ETIMEDOUT: the
                # link died with writes unacknowledged).
                raise RedisConnectionError("the pub/sub link timed out")
            kind = reply[0]
            if kind == b"message":
                on_message(reply[1], reply[2])
            elif kind == b"subscribe":
                self._subscriptions.confirmed(reply[1].decode())
                if telling_live:
                    # The first: Redis has run the whole resubscription.
                    telling_live = False
                    self._on_live()

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
            if leaves and (error := await self._send(link, "UNSUBSCRIBE", *leaves)):
                # A broken link: the next connection subscribes only what is wanted.
                log.warning(f"{self._area}.unsubscribe_failed", channels=len(leaves), error=error)
            if joins and (error := await self._send(link, "SUBSCRIBE", *joins)):
                log.warning(f"{self._area}.subscribe_failed", channels=len(joins), error=error)
                self._subscriptions.not_sent(joins)
            if ping:
                # Its pong comes to the reader like any reply; one that cannot go out leaves
                # the link to the next check.
                await self._send(link, "PING")

    async def _send(self, link: AbstractConnection, *command: str) -> str | None:
        """Sends ``command`` on ``link``, which must still be the current one (a send on a
        closed connection would connect it again); returns why it could not, or None."""
        if link is not self._link or not link.is_connected:
            return "the connection is gone"
        try:
            await link.send_command(*command, check_health=False)
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
