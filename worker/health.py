"""The worker's ``GET /readyz``, served beside ``/metrics`` on ``WORKER_METRICS_PORT``: 200 while
Redis answers and the job queue's connection is up, 503 naming what is down. A worker has no
other port, so this is what compose's healthcheck and an orchestrator's probe ask."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.metrics_http import Handler
from shared.readiness import answers
from shared.redis_client import RedisClient


def readyz_handler(
    redis: RedisClient, queue_ping: Callable[[], Awaitable[bool]], *, timeout_s: float
) -> Handler:
    async def readyz(_: web.Request) -> web.StreamResponse:
        checks = {
            "redis": await answers(_ping(redis), timeout_s),
            "queue": await answers(queue_ping(), timeout_s),
        }
        ready = all(checks.values())
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    return readyz


async def _ping(redis: RedisClient) -> bool:
    return bool(await redis.ping())
