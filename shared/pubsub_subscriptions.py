"""The bookkeeping of a pub/sub connection's channels, without any I/O: which channels its owner
wants, which Redis was asked to subscribe on the current connection, what is queued to send,
and who waits for Redis to confirm a channel.

Joins and leaves are queued and taken as one batch (one UNSUBSCRIBE, then one SUBSCRIBE; on a
cluster, one of each per slot), so that many streams opening in one turn of the event loop share
a write. Batches are sent in the order taken, so a leave and a rejoin of one channel reach Redis
in order; Redis confirms each channel of a SUBSCRIBE in order, and the confirmations are matched
oldest first.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque


class Subscriptions:
    def __init__(self) -> None:
        # The channels the owner wants subscribed, on this connection or the next.
        self.wanted: set[str] = set()
        # Channels Redis was last asked to subscribe on the current connection (and not asked
        # to leave since).
        self._asked: set[str] = set()
        # Per channel, the SUBSCRIBEs sent and not yet confirmed, oldest first; each resolves to
        # True once Redis confirms it, False if it could not be sent or its connection was lost.
        self._confirmations: defaultdict[str, deque[asyncio.Future[bool]]] = defaultdict(deque)
        # Channels joined or left since the last batch, in order, each with the confirmation its
        # next SUBSCRIBE resolves (None for a leave).
        self._queued: dict[str, asyncio.Future[bool] | None] = {}

    @property
    def queued(self) -> bool:
        """Whether a join or a leave waits to be sent."""
        return bool(self._queued)

    def want(self, channel: str) -> asyncio.Future[bool] | None:
        """Mark ``channel`` wanted. Returns what a caller waits for before it may count on the
        channel: its latest SUBSCRIBE, sent or queued; None once Redis has confirmed it."""
        self.wanted.add(channel)
        if channel in self._asked:
            pending = self._confirmations.get(channel)
            return pending[-1] if pending else None
        confirmed = self._queued.get(channel)
        if confirmed is None:
            confirmed = asyncio.get_running_loop().create_future()
            self._queued[channel] = confirmed
        return confirmed

    def drop(self, channel: str) -> None:
        """``channel`` is no longer wanted: queue its leave."""
        self.wanted.discard(channel)
        self._queued.setdefault(channel, None)

    def take_batch(self) -> tuple[list[str], list[str]]:
        """The channels to leave and the channels to join now, in that order, for the current
        connection; the joins count as asked from here on."""
        queued, self._queued = self._queued, {}
        leaves: list[str] = []
        joins: list[str] = []
        for channel, confirmed in queued.items():
            wanted = channel in self.wanted
            if wanted and channel not in self._asked:
                # None only if the channel's SUBSCRIBE could not go out, and it was wanted again.
                loop = asyncio.get_running_loop()
                self._confirmations[channel].append(confirmed or loop.create_future())
                self._asked.add(channel)
                joins.append(channel)
            elif not wanted and channel in self._asked:
                self._asked.discard(channel)
                leaves.append(channel)
            elif confirmed is not None and not confirmed.done():
                # Left again before its SUBSCRIBE went out.
                confirmed.set_result(False)
        return leaves, joins

    def resubscribe(self) -> list[str]:
        """Every wanted channel, for a new connection's first SUBSCRIBE, which takes in every
        join and leave queued meanwhile."""
        for channel, confirmed in self._queued.items():
            if confirmed is None:
                continue
            if channel in self.wanted:
                self._confirmations[channel].append(confirmed)
            elif not confirmed.done():
                confirmed.set_result(False)
        self._queued.clear()
        self._asked = set(self.wanted)
        return list(self._asked)

    def confirmed(self, channel: str) -> None:
        """Redis confirmed ``channel``: its oldest SUBSCRIBE is done."""
        self._settle(channel, confirmed=True)

    def not_sent(self, channels: list[str]) -> None:
        """The batch's SUBSCRIBE of ``channels`` could not go out."""
        for channel in channels:
            self._asked.discard(channel)
            # The newest: the batch's own, the only one of the channel's not sent.
            self._settle(channel, confirmed=False)

    def forget(self, channels: list[str]) -> None:
        """Redis holds ``channels`` no more on this connection, and will not (on a cluster,
        their slot has moved to another node): they are no longer wanted here, nothing is sent
        for them, and whoever waits for them is told they were not taken."""
        for channel in channels:
            self.wanted.discard(channel)
            self._asked.discard(channel)
            for future in self._confirmations.pop(channel, ()):
                if not future.done():
                    future.set_result(False)
            queued = self._queued.pop(channel, None)
            if queued is not None and not queued.done():
                queued.set_result(False)

    def link_lost(self) -> None:
        """The connection is gone, or could not be made: every confirmation pending or queued
        fails, and nothing is asked on the next connection until :meth:`resubscribe`."""
        confirmations, self._confirmations = self._confirmations, defaultdict(deque)
        for pending in confirmations.values():
            for future in pending:
                if not future.done():
                    future.set_result(False)
        for channel, confirmed in self._queued.items():
            if confirmed is not None:
                if not confirmed.done():
                    confirmed.set_result(False)
                # Still queued: a join that comes later in this outage waits for the next one.
                self._queued[channel] = None
        self._asked.clear()

    def _settle(self, channel: str, *, confirmed: bool) -> None:
        pending = self._confirmations.get(channel)
        if not pending:
            return
        future = pending.popleft() if confirmed else pending.pop()
        if not pending:
            del self._confirmations[channel]
        if not future.done():
            future.set_result(confirmed)
