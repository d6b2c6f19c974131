"""The gateway and a worker in one process, sharing one set of embedded servers: the in-process
Redis and job queue (``shared/embedded.py``). ``make run`` serves this app, and the tests that
stream through an in-process worker build it the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeAlias

from aiohttp import web

from gateway.app import create_app
from gateway.metrics import METRICS
from launcher.docs import ingest_docs
from shared.embedded import EmbeddedServers
from shared.settings import GatewaySettings, WorkerSettings
from worker.metrics import WorkerMetrics
from worker.worker import Worker

CleanupContext: TypeAlias = Callable[[web.Application], AsyncIterator[None]]


def create_embedded_app(
    settings: GatewaySettings, worker_settings: WorkerSettings
) -> web.Application:
    """The gateway's app with a worker running inside it: both on the same embedded servers,
    the worker started last and stopped first."""
    if not settings.connections.embedded or not worker_settings.connections.embedded:
        raise ValueError("the embedded app runs on the embedded transports: no REDIS_URL/AMQP_URL")
    servers = EmbeddedServers()
    app = create_app(settings, embedded=servers)
    app.cleanup_ctx.append(_worker(servers, worker_settings))
    return app


def _worker(servers: EmbeddedServers, settings: WorkerSettings) -> CleanupContext:
    async def run(app: web.Application) -> AsyncIterator[None]:
        redis = servers.redis()
        await ingest_docs(redis, settings)
        # The worker's series join the gateway's /metrics.
        metrics = WorkerMetrics(settings.worker_id, app[METRICS].registry)
        worker = Worker(settings, redis, servers.job_queue, metrics=metrics)
        await worker.start()
        yield
        await worker.close()
        await redis.aclose()

    return run
