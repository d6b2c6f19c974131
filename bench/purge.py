"""Removing everything one namespace created on the real servers: its Redis keys, its AMQP
queues and exchanges. The tests and the benchmark each work in namespaces of their own and
clean up with this."""

from __future__ import annotations

import aio_pika
from redis.asyncio import Redis

from shared.names import Names


async def purge_namespace(names: Names, redis_url: str, amqp_url: str) -> None:
    """Delete every Redis key and AMQP entity of ``names``' namespace."""
    redis = Redis.from_url(redis_url)
    try:
        async for key in redis.scan_iter(match=names.key_pattern, count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in (names.jobs_queue, names.dead_letter_queue):
            await channel.queue_delete(queue)
        for exchange in (names.jobs_exchange, names.dead_letter_exchange):
            await channel.exchange_delete(exchange)
