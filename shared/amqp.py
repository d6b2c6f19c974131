"""The job queue on RabbitMQ: a durable quorum queue with a delivery limit and a dead-letter
queue, publisher confirms and persistent messages; one robust connection per process, to
whichever of ``AMQP_URL``'s nodes answers, moving to the next when its node goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, DeliveryError
from aiormq.exceptions import ChannelInvalidStateError

from shared import job_trace
from shared.amqp_nodes import node_urls
from shared.job import Job, encode_job
from shared.jobqueue import DeliveryHandler, QueueUnavailableError
from shared.library_internals import NodeRotatingConnection
from shared.logging import get_logger
from shared.names import JOB_DELIVERY_LIMIT, Names
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

JOB_CONTENT_TYPE = "application/msgpack"
# What the job's spans name as their messaging system (OpenTelemetry's messaging conventions).
AMQP_MESSAGING_SYSTEM = "rabbitmq"
# The pause between two connection attempts; each goes to the next node.
RECONNECT_INTERVAL_S = 1.0


async def declare_topology(
    channel: AbstractChannel, names: Names
) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare the jobs exchange and quorum queue, and the dead-letter pair behind them."""
    dead_letters = await channel.declare_exchange(
        names.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead_queue = await channel.declare_queue(
        names.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_queue.bind(dead_letters, routing_key=names.jobs_routing_key)
    jobs = await channel.declare_exchange(
        names.jobs_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    queue = await channel.declare_queue(
        names.jobs_queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": JOB_DELIVERY_LIMIT,
            "x-dead-letter-exchange": names.dead_letter_exchange,
            "x-dead-letter-routing-key": names.jobs_routing_key,
        },
    )
    await queue.bind(jobs, routing_key=names.jobs_routing_key)
    return jobs, queue


@dataclass(slots=True)
class AmqpDelivery:
    message: AbstractIncomingMessage

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def redelivered(self) -> bool:
        return bool(self.message.redelivered)

    @property
    def headers(self) -> Mapping[str, Any]:
        return self.message.headers

    async def ack(self) -> None:
        await self.message.ack()

    async def reject(self) -> None:
        await self.message.reject(requeue=False)

    async def requeue(self) -> None:
        await self.message.nack(requeue=True)

    async def retry(self) -> None:
        # RabbitMQ 4.3 and later count only a reject toward the quorum queue's delivery limit
        # (a nack is "not processed", not "failed"); earlier versions count every return.
        await self.message.reject(requeue=True)


def connect_to_nodes(url: str, name: str | None = None) -> NodeRotatingConnection:
    """A robust connection, not yet connected, to ``url``'s nodes (``AMQP_URL``'s value). Its
    ``connect(timeout)`` tries them in turn, ``RECONNECT_INTERVAL_S`` apart and each attempt
    bounded by ``timeout``, until one answers; it does the same whenever its node goes away.
    ``name`` is what RabbitMQ shows for it (``rabbitmqctl list_connections client_properties``,
    the management UI), so an operator can tell which process holds which connection."""
    # Not fail_fast: a first node that is down is a reason to try the next, not to give up.
    return NodeRotatingConnection(
        node_urls(url),
        reconnect_interval=RECONNECT_INTERVAL_S,
        fail_fast=False,
        client_properties={"connection_name": name} if name else None,
    )


class AmqpJobQueue:
    """Publishes and consumes jobs. It keeps trying to connect in the background, so a process
    starts (and answers 503) while RabbitMQ is down, and recovers without a restart; with
    several nodes, it moves to another when its node goes away."""

    def __init__(
        self,
        url: str,
        names: Names,
        *,
        timeout_s: float,
        confirm_timeout_s: float | None = None,
        connection_name: str | None = None,
    ) -> None:
        """``url`` is ``AMQP_URL``'s value: one node's URL, or several comma-separated.
        ``timeout_s`` bounds each connection attempt; ``confirm_timeout_s`` (default the
        same) the wait for the broker to confirm a publish on a live connection;
        ``connection_name`` names the connection in RabbitMQ's listings."""
        self._url = url
        self._connection_name = connection_name
        self._names = names
        self._timeout_s = timeout_s
        self._confirm_timeout_s = timeout_s if confirm_timeout_s is None else confirm_timeout_s
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._channel: AbstractChannel | None = None
        # The channel jobs are published on when it is not ``_channel`` (see _renew_publishing).
        self._publishing: AbstractChannel | None = None
        self._renewing = False
        self._consumer_tag: str | None = None
        self._connected = asyncio.Event()
        # Whether the connection was up when it last closed: a lost connection, not an attempt.
        self._up = False
        self._connector: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin connecting in the background."""
        self._connector = asyncio.create_task(self._connect_until_up())

    async def wait_connected(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        return self._connected.is_set()

    async def _connect_until_up(self) -> None:
        connection = connect_to_nodes(self._url, self._connection_name)
        connection.close_callbacks.add(self._on_connection_closed)
        connection.reconnect_callbacks.add(self._on_reconnected)
        # Kept before it connects: close() must end its attempts too.
        self._connection = connection
        await connection.connect(timeout=self._timeout_s)
        self._channel = await connection.channel(publisher_confirms=True)
        self._exchange, self._queue = await declare_topology(self._channel, self._names)
        self._up = True
        self._connected.set()
        log.info("amqp.connected", queue=self._names.jobs_queue, node=str(connection))

    def _on_connection_closed(
        self, connection: AbstractConnection | None, error: BaseException | None
    ) -> None:
        # Called for a lost connection and for each failed attempt alike; by then the
        # connection has moved on to the node its next attempt goes to (str() hides passwords).
        if connection is None or connection.close_called:
            return
        event = "amqp.connection_lost" if self._up else "amqp.connect_failed"
        self._up = False
        log.warning(event, error=repr(error), next_node=str(connection))

    def _on_reconnected(self, connection: AbstractRobustConnection | None) -> None:
        # aio-pika has reopened the channel and restored the topology and the consumer.
        self._up = True
        log.info("amqp.reconnected", node=str(connection))

    async def publish(self, job: Job) -> None:
        if self._exchange is None or self._connection is None or self._connection.is_closed:
            raise QueueUnavailableError("the job queue is not connected")
        names = self._names
        # The span ends once the broker confirms: the publish and its confirm, as one.
        with job_trace.publishing(
            job, AMQP_MESSAGING_SYSTEM, names.jobs_exchange, names.jobs_routing_key
        ) as headers:
            message = aio_pika.Message(
                encode_job(job),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type=JOB_CONTENT_TYPE,
                message_id=job.job_id,
                headers=headers,
            )
            exchange = self._exchange
            try:
                async with asyncio.timeout(self._confirm_timeout_s):
                    await exchange.publish(message, routing_key=names.jobs_routing_key)
            except DeliveryError as e:
                await self._renew_publishing(exchange)
                raise QueueUnavailableError(f"the job was refused: {e!r}") from e
            except (TimeoutError, AMQPError, ConnectionError, ChannelInvalidStateError) as e:
                # The last: a robust channel that is reconnecting refuses to publish.
                raise QueueUnavailableError(f"the job was not confirmed: {e!r}") from e

    async def _renew_publishing(self, nacked: AbstractExchange) -> None:
        """Publish on a new channel from now on. RabbitMQ (3.10 seen) nacks every publish of a
        channel whose first publish reached the quorum queue while its leader was being
        replaced, for as long as the channel lives; a new channel publishes again. Once per
        nacked channel: the publishes nacked with it find ``nacked`` replaced already."""
        connection = self._connection
        if self._renewing or nacked is not self._exchange or connection is None:
            return
        self._renewing = True
        try:
            async with asyncio.timeout(self._timeout_s):
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.get_exchange(self._names.jobs_exchange, ensure=False)
            stale, self._publishing, self._exchange = self._publishing, channel, exchange
            log.warning("amqp.publishing_renewed", reason="the broker nacked a job")
            if stale is not None:
                with contextlib.suppress(AMQPError, ConnectionError, ChannelInvalidStateError):
                    await stale.close()
        except (TimeoutError, AMQPError, ConnectionError, ChannelInvalidStateError) as e:
            log.warning("amqp.publishing_renew_failed", error=repr(e))
        finally:
            self._renewing = False

    async def ping(self) -> bool:
        """Connected now: false while the connection moves to another node."""
        connection = self._connection
        return (
            self._connected.is_set()
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    async def start_consuming(self, handler: DeliveryHandler, prefetch: int) -> None:
        await self._connected.wait()
        assert self._channel is not None and self._queue is not None
        await self._channel.set_qos(prefetch_count=prefetch)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await handler(AmqpDelivery(message))

        self._consumer_tag = await self._queue.consume(on_message)

    async def stop_consuming(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(AMQPError, ConnectionError, RuntimeError):
                await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None

    async def close(self) -> None:
        await cancel_and_wait(self._connector)
        if self._connection is not None:
            await self._connection.close()
