"""Pub/sub on a Redis Cluster: sharded channels, one link per node that holds some of them, and
each channel routed to the node that owns its slot. :func:`listener_for` picks this listener or
the plain one for a client.

Each channel goes to its slot's primary, as the cluster client's own slot map names it. A link
(a :class:`~shared.pubsub_listener.PubSubListener`, which batches, confirms, pings and
reconnects) is opened with its node's first channel and closed once it has none: one connection
per node that holds this process's channels, not one per channel. Messages go from the link
straight to the owner's callback: nothing is routed per message.

A channel loses its home three ways: Redis drops it unasked (its slot moved away: Redis 7 pushes
``sunsubscribe``), Redis refuses its join (``MOVED``: the map is stale), or its node's link is
lost (the node may be dead, and its replica take over after the cluster's node timeout and an
election). Then the router refreshes the slot map, joins the channel on its owner, and once
Redis confirms it there tells the owner (``on_live``) that the channel is live again, so that it
catches up on what it missed. It tries again every ``RETRY_S`` while a channel has no home or a
lost link still holds channels: a failover takes seconds, and only then does the map name the new
primary.

Not redis-py's ``ClusterPubSub``: it reads messages through ``get_message`` (the per-message
cost the plain listener avoids), its per-node ``PubSub`` reconnects behind its owner's back, and
it neither confirms a subscription to a caller that waits nor tells anyone to catch up after a
move. Nor is its private hook on slot-map refreshes needed: every move that matters to a
subscribed channel reaches the channel's link itself, as a push, a refusal or a lost connection.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from functools import partial
from typing import TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, SlotNotCoveredError

from shared.library_internals import cluster_node_connection, refresh_slot_map
from shared.logging import get_logger
from shared.pubsub_listener import (
    RETRY_S,
    PubSubListener,
    ShardHooks,
    SubscribeError,
    worth_logging,
)
from shared.redis_client import RedisClient
from shared.tasks import cancel_and_wait, start_shared_task

log = get_logger(__name__)


class _NodeLink:
    """One node's link, whose reports reach the router with the link they come from: a link
    being closed must not move channels that a newer link to the same node now holds."""

    def __init__(self, router: ShardedListener, node: ClusterNode) -> None:
        self.name = node.name
        self._router = router
        self.listener = PubSubListener(
            lambda: cluster_node_connection(node),
            on_message=router.on_message,
            on_live=self._live,
            log_area=router.area,
            shard=ShardHooks(
                node=node.name,
                slot_of=router.cluster.keyslot,
                on_moved=self._moved,
                on_down=self._down,
            ),
        )

    def _live(self, channels: Collection[str]) -> None:
        self._router.link_live(self, channels)

    def _moved(self, channels: list[str], lost: bool) -> None:
        self._router.link_moved(self, channels, lost=lost)

    def _down(self) -> None:
        self._router.link_down(self)


class ShardedListener:
    """:class:`~shared.pubsub_listener.PubSubListener`'s interface over a Redis Cluster.
    ``on_live(channels)`` is called with the channels live again after a move, a failover or
    an outage of their link."""

    def __init__(
        self,
        cluster: RedisCluster,
        *,
        channels: Iterable[str] = (),
        on_message: Callable[[bytes, bytes], None],
        on_live: Callable[[Collection[str]], None],
        log_area: str,
        confirm_timeout_s: float = 5.0,
    ) -> None:
        self.cluster = cluster
        self.on_message = on_message
        self.area = log_area
        self._on_live = on_live
        self._confirm_timeout_s = confirm_timeout_s
        self._wanted: set[str] = set(channels)
        # Per channel, the node whose link it is joined on, or being joined on.
        self._home: dict[str, str] = {}
        self._links: dict[str, _NodeLink] = {}
        # Wanted channels with no home: joined once the slot map names their owner.
        self._homeless: set[str] = set()
        # Channels that lost their subscription (and maybe messages): the owner is told once
        # Redis confirms them again.
        self._recovering: set[str] = set()
        # Per channel that lost its home, how many times: a join that fails because the channel
        # moved meanwhile is tried again where it went, not reported as failed.
        self._moves: Counter[str] = Counter()
        # Nodes whose link is lost: their channels move once the map names another owner.
        self._down: set[str] = set()
        self._router: asyncio.Task[None] | None = None
        # Resolved at the end of each routing round, for subscribers of a homeless channel.
        self._round: asyncio.Future[bool] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def linked_nodes(self) -> set[str]:
        """The nodes this listener has a link to."""
        return set(self._links)

    async def start(self) -> None:
        """Start listening; returns after the first attempt to connect, whether it worked or
        not (the listener goes on trying)."""
        try:
            # The client learns the slot map lazily, on its first command.
            await self.cluster.initialize()
        except (RedisError, OSError, RedisClusterException) as e:
            log.warning(
                f"{self.area}.slot_map_failed", error=str(e), retry_in_s=RETRY_S, failures=1
            )
        for channel in self._wanted:
            self._join(channel)
        await asyncio.gather(*(link.listener.start() for link in list(self._links.values())))

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._router)
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.listener.close() for link in links))
        if self._closing:
            await asyncio.gather(*self._closing)
        self._round_done()

    async def subscribe(self, channel: str) -> None:
        """Want ``channel``; returns once Redis has confirmed it on its slot's owner. Raises
        :class:`SubscribeError` at once when its SSUBSCRIBE cannot go out, or after the confirm
        timeout; a refusal because the slot moved only sends it to the new owner."""
        if self._closed:
            raise SubscribeError("the listener is closed")
        self._wanted.add(channel)
        try:
            async with asyncio.timeout(self._confirm_timeout_s):
                while True:
                    confirmed = self._join(channel)
                    if channel in self._homeless:
                        # Joined once the round that finds it a home has run.
                        await asyncio.shield(self._next_round())
                        continue
                    moves = self._moves[channel]
                    # Shielded: several callers may wait for one confirmation.
                    if confirmed is None or await asyncio.shield(confirmed):
                        return
                    if channel not in self._homeless and self._moves[channel] == moves:
                        raise SubscribeError(f"Redis did not take {channel}")
        except TimeoutError as e:
            raise SubscribeError(f"Redis did not confirm {channel}") from e

    def unsubscribe(self, channel: str) -> None:
        """No longer want ``channel``. Synchronous, so it is safe in a cancelled task's
        ``finally``."""
        if self._closed:
            return
        self._wanted.discard(channel)
        self._homeless.discard(channel)
        self._recovering.discard(channel)
        self._moves.pop(channel, None)
        name = self._home.pop(channel, None)
        if name is not None:
            self._links[name].listener.unsubscribe(channel)
            self._close_if_idle(name)

    def link_live(self, link: _NodeLink, channels: Collection[str]) -> None:
        if self._links.get(link.name) is not link:
            return
        self._down.discard(link.name)
        if channels:
            self._recovering.difference_update(channels)
            self._on_live(channels)

    def link_moved(self, link: _NodeLink, channels: list[str], *, lost: bool) -> None:
        if self._links.get(link.name) is not link:
            return
        for channel in channels:
            if self._home.get(channel) != link.name:
                continue
            del self._home[channel]
            if channel in self._wanted:
                self._moves[channel] += 1
                self._homeless.add(channel)
                if lost:
                    self._recovering.add(channel)
        self._close_if_idle(link.name)
        self._route_soon()

    def link_down(self, link: _NodeLink) -> None:
        if self._links.get(link.name) is link:
            self._down.add(link.name)
            self._route_soon()

    def _join(self, channel: str) -> asyncio.Future[bool] | None:
        """Join ``channel`` on its home, found for it if it has none; returns what resolves to
        whether Redis took it there, or None when it has already, or when it is homeless."""
        if self._closed:
            raise SubscribeError("the listener is closed")
        if channel not in self._wanted:
            raise SubscribeError(f"{channel} was left meanwhile")
        if channel not in self._homeless:
            link = self._home_link(channel)
            if link is not None:
                return link.listener.join(channel, reviving=channel in self._recovering)
        return None

    def _home_link(self, channel: str) -> _NodeLink | None:
        """The link of ``channel``'s home; a channel without one gets its owner's (a new link
        if there is none), or None, and is homeless, while the map names no owner."""
        name = self._home.get(channel)
        if name is not None:
            return self._links[name]
        try:
            node = self.cluster.get_node_from_key(channel)
        except SlotNotCoveredError:
            node = None
        if node is None:
            self._homeless.add(channel)
            self._route_soon()
            return None
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = _NodeLink(self, node)
            link.listener.launch()
        self._home[channel] = node.name
        return link

    def _close_if_idle(self, name: str) -> None:
        link = self._links.get(name)
        if link is None or link.listener.channels:
            return
        del self._links[name]
        self._down.discard(name)
        task = asyncio.get_running_loop().create_task(link.listener.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _route_soon(self) -> None:
        if not self._closed and (self._router is None or self._router.done()):
            self._router = start_shared_task(self._route(), f"{self.area}-router")

    async def _route(self) -> None:
        """Refresh the slot map and send each channel that lost its home to its owner, every
        ``RETRY_S`` until every channel has one and no lost link holds any."""
        failures = 0
        while True:
            # The channels of one burst (a slot's worth of moves) share the round.
            await asyncio.sleep(0)
            try:
                await refresh_slot_map(self.cluster)
                failures = 0
                self._reroute()
            except (RedisError, OSError, RedisClusterException) as e:
                failures += 1
                if worth_logging(failures):
                    log.warning(
                        f"{self.area}.slot_map_failed",
                        error=str(e),
                        retry_in_s=RETRY_S,
                        failures=failures,
                    )
            except Exception:
                # A router that ended would leave channels without a home for good.
                log.exception(f"{self.area}.router_failed", retry_in_s=RETRY_S)
            self._round_done()
            if not (self._homeless or self._down):
                return
            await asyncio.sleep(RETRY_S)

    def _reroute(self) -> None:
        for name in list(self._down):
            self._leave_lost_link(name)
        homeless, self._homeless = self._homeless, set()
        rehomed = 0
        for channel in homeless:
            link = self._home_link(channel)
            if link is not None:
                link.listener.join(channel, reviving=channel in self._recovering)
                rehomed += 1
        if rehomed:
            log.info(
                f"{self.area}.channels_rehomed", channels=rehomed, homeless=len(self._homeless)
            )

    def _leave_lost_link(self, name: str) -> None:
        """Move the channels of a lost link whose slot the map now gives another node."""
        link = self._links.get(name)
        if link is None:
            self._down.discard(name)
            return
        for channel in list(link.listener.channels):
            try:
                owner = self.cluster.get_node_from_key(channel)
            except SlotNotCoveredError:
                continue
            if owner is None or owner.name == name:
                continue
            link.listener.unsubscribe(channel)
            self._home.pop(channel, None)
            self._moves[channel] += 1
            self._homeless.add(channel)
            self._recovering.add(channel)
        self._close_if_idle(name)

    def _next_round(self) -> asyncio.Future[bool]:
        if self._round is None or self._round.done():
            self._round = asyncio.get_running_loop().create_future()
        return self._round

    def _round_done(self) -> None:
        if self._round is not None and not self._round.done():
            self._round.set_result(False)


Listener: TypeAlias = PubSubListener | ShardedListener


def listener_for(
    redis: RedisClient,
    *,
    channels: Iterable[str] = (),
    on_message: Callable[[bytes, bytes], None],
    on_live: Callable[[Collection[str]], None],
    log_area: str,
    confirm_timeout_s: float = 5.0,
) -> Listener:
    """The pub/sub listener for ``redis``: plain channels on one Redis (or the primary
    Sentinel names), on a link made from the client's pool settings; sharded ones on a
    cluster."""
    # The same arguments either way; a plain link connects as the client's pool would.
    make = (
        partial(PubSubListener, redis.connection_pool.make_connection)
        if isinstance(redis, Redis)
        else partial(ShardedListener, redis)
    )
    return make(
        channels=channels,
        on_message=on_message,
        on_live=on_live,
        log_area=log_area,
        confirm_timeout_s=confirm_timeout_s,
    )
