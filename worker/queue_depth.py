"""How many jobs wait in the broker's queue, read from RabbitMQ itself at scrape time.

A passive declare returns the queue's ready-message count. It runs on a connection and channel
of its own: a failed passive declare closes its channel, and the consumer's must never close.
The connection goes to the first of ``AMQP_URL``'s nodes that answers; any node of a cluster
can say how deep the queue is.
"""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import AMQPError

from shared.amqp_nodes import node_urls
from shared.logging import get_logger

log = get_logger(__name__)

PROBE_ERRORS = (TimeoutError, AMQPError, OSError)


class QueueDepthProbe:
    def __init__(self, url: str, queue: str, *, timeout_s: float) -> None:
        """``url`` is ``AMQP_URL``'s value: one node's URL, or several comma-separated."""
        self._nodes = node_urls(url)
        self.queue = queue
        self._timeout_s = timeout_s
        self._connection: AbstractConnection | None = None

    async def read(self) -> int | None:
        """The ready jobs in the queue, or None when the broker cannot say."""
        try:
            if self._connection is None or self._connection.is_closed:
                self._connection = await self._connect()
            async with asyncio.timeout(self._timeout_s), self._connection.channel() as channel:
                declared = await channel.declare_queue(self.queue, passive=True)
        except PROBE_ERRORS as e:
            log.warning("metrics.queue_depth_failed", queue=self.queue, error=repr(e))
            return None
        count = declared.declaration_result.message_count
        return int(count) if count is not None else None

    async def _connect(self) -> AbstractConnection:
        """A connection to the first node that answers, each tried for ``timeout_s``."""
        failures: list[Exception] = []
        for node in self._nodes:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await aio_pika.connect(node, timeout=self._timeout_s)
            except PROBE_ERRORS as e:
                failures.append(e)
        raise failures[-1]

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
