"""Draining a gateway on SIGTERM: it stops accepting, then closes its open streams at random
moments spread over DRAIN_S, so that their clients reconnect elsewhere with Last-Event-ID a
few at a time instead of all at once."""

from __future__ import annotations

import asyncio
import random

from gateway.client_stream import ClientStream
from shared.logging import get_logger

log = get_logger(__name__)

# After the last scheduled close, how long streams get to write their final bytes.
DRAIN_SLACK_S = 1.0


class StreamDrain:
    def __init__(self, drain_s: float) -> None:
        self._drain_s = drain_s
        self._open: set[ClientStream] = set()
        self._draining = False
        self._all_closed = asyncio.Event()

    def register(self, stream: ClientStream) -> None:
        self._open.add(stream)
        self._all_closed.clear()
        if self._draining:
            self._schedule(stream)

    def unregister(self, stream: ClientStream) -> None:
        self._open.discard(stream)
        if not self._open:
            self._all_closed.set()

    async def drain(self) -> None:
        """Close every open stream within DRAIN_S; returns when all are closed (or time is up)."""
        self._draining = True
        log.info("gateway.draining", streams=len(self._open), drain_s=self._drain_s)
        for stream in list(self._open):
            self._schedule(stream)
        if self._open:
            try:
                async with asyncio.timeout(self._drain_s + DRAIN_SLACK_S):
                    await self._all_closed.wait()
            except TimeoutError:
                log.warning("gateway.drain_incomplete", streams=len(self._open))

    def _schedule(self, stream: ClientStream) -> None:
        delay_s = random.uniform(0, self._drain_s)
        asyncio.get_running_loop().call_later(delay_s, stream.close_for_drain)
