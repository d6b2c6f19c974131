"""The worker's ``/readyz`` on its metrics port, which compose's healthcheck asks: 200 while
Redis and the job queue answer, 503 naming each one that does not."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from redis.asyncio import Redis

from launcher.ports import free_port
from shared.amqp import AmqpJobQueue
from shared.settings import ConnectionSettings
from tests.conftest import worker_settings
from worker.health import readyz_handler
from worker.metrics import WorkerMetrics, metrics_endpoint

pytestmark = pytest.mark.real


async def readyz_answer(
    connections: ConnectionSettings, redis: Redis, queue: AmqpJobQueue, timeout_s: float
) -> tuple[int, object]:
    """What GET /readyz answers on a worker metrics site serving this Redis and queue."""
    settings = dataclasses.replace(worker_settings(connections), metrics_port=free_port())
    handler = readyz_handler(redis, queue.ping, timeout_s=timeout_s)
    async with (
        metrics_endpoint(settings, WorkerMetrics("w"), readyz=handler) as port,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/readyz") as response,
    ):
        return response.status, await response.json()


async def test_worker_readyz_is_200_when_redis_and_the_queue_answer(
    real_connections: ConnectionSettings,
) -> None:
    assert real_connections.redis_url is not None and real_connections.amqp_url is not None
    redis = Redis.from_url(real_connections.redis_url)
    queue = AmqpJobQueue(real_connections.amqp_url, real_connections.names, timeout_s=2.0)
    queue.start()
    try:
        assert await queue.wait_connected(10.0)
        assert await readyz_answer(real_connections, redis, queue, 1.0) == (
            200,
            {"status": "ready", "checks": {"redis": True, "queue": True}},
        )
    finally:
        await queue.close()
        await redis.aclose()


async def test_worker_readyz_is_503_naming_what_is_down(
    real_connections: ConnectionSettings,
) -> None:
    # Nothing listens on either port: a Redis that is down and a queue never connected.
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    queue = AmqpJobQueue(
        f"amqp://guest:guest@127.0.0.1:{free_port()}/", real_connections.names, timeout_s=0.5
    )
    try:
        assert await readyz_answer(real_connections, redis, queue, 0.5) == (
            503,
            {"status": "unavailable", "checks": {"redis": False, "queue": False}},
        )
    finally:
        await queue.close()
        await redis.aclose()
