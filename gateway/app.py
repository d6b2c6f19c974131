"""The gateway's application factory. Production (``python -m gateway``) and the tests build the
app the same way; each connection is one ``cleanup_ctx`` entry, so cleanup runs only for what
started."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import appkeys, metrics
from gateway.fanout import EventFanout
from gateway.middlewares import authentication, echo_request_id, error_format, request_context
from gateway.routes import chat, health
from shared.amqp import AmqpJobQueue
from shared.embedded import EmbeddedServers
from shared.logging import get_logger
from shared.redis_client import connect_redis
from shared.settings import GatewaySettings
from worker.metrics import WorkerMetrics
from worker.worker import Worker

log = get_logger(__name__)

# Request lines and headers up to 64 KiB, so a 16,000-character question fits in a GET URL.
MAX_LINE_BYTES = 64 * 1024


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway as an aiohttp application. With no REDIS_URL/AMQP_URL it runs embedded:
    an in-process Redis and job queue, and a worker inside the same process."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_context, error_format, authentication],
        handler_args={"max_line_size": MAX_LINE_BYTES, "max_field_size": MAX_LINE_BYTES},
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.INSTANCE_ID] = uuid.uuid4().hex
    app.on_response_prepare.append(echo_request_id)
    if settings.connections.embedded:
        app[appkeys.EMBEDDED] = EmbeddedServers()
        app.cleanup_ctx.extend([_embedded_redis, _embedded_queue, _fanout, _embedded_worker])
    else:
        app.cleanup_ctx.extend([_redis, _amqp, _fanout])
    metrics.setup(app, settings)
    app.add_routes(health.routes)
    app.add_routes(chat.routes)
    return app


async def _redis(app: web.Application) -> AsyncIterator[None]:
    app[appkeys.REDIS] = redis = connect_redis(app[appkeys.SETTINGS].connections)
    yield
    await redis.aclose()


async def _amqp(app: web.Application) -> AsyncIterator[None]:
    connections = app[appkeys.SETTINGS].connections
    assert connections.amqp_url is not None
    queue = AmqpJobQueue(
        connections.amqp_url, connections.names, timeout_s=connections.connect_timeout_s
    )
    queue.start()
    # Serve at once, but give a reachable broker a moment so the first request finds it.
    await queue.wait_connected(connections.connect_timeout_s)
    app[appkeys.JOB_PUBLISHER] = queue
    yield
    await queue.close()


async def _embedded_redis(app: web.Application) -> AsyncIterator[None]:
    app[appkeys.REDIS] = redis = app[appkeys.EMBEDDED].redis()
    yield
    await redis.aclose()


async def _embedded_queue(app: web.Application) -> AsyncIterator[None]:
    app[appkeys.JOB_PUBLISHER] = app[appkeys.EMBEDDED].job_queue
    yield


async def _fanout(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    fanout = EventFanout(
        app[appkeys.REDIS],
        settings.connections.names,
        app[appkeys.INSTANCE_ID],
        timeout_s=settings.connections.connect_timeout_s,
    )
    await fanout.start()
    app[appkeys.FANOUT] = fanout
    yield
    await fanout.close()


async def _embedded_worker(app: web.Application) -> AsyncIterator[None]:
    embedded = app[appkeys.EMBEDDED]
    redis = embedded.redis()
    settings = app[appkeys.SETTINGS].embedded_worker
    # The embedded worker's series join the gateway's /metrics.
    worker_metrics = WorkerMetrics(settings.worker_id, app[metrics.METRICS].registry)
    worker = Worker(settings, redis, embedded.job_queue, metrics=worker_metrics)
    await worker.start()
    yield
    await worker.close()
    await redis.aclose()
