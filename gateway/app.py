"""The gateway's application factory. Production (``python -m gateway``) and the tests build the
app the same way; each connection is one ``cleanup_ctx`` entry, so cleanup runs only for what
started. ``serve`` runs it the way production does."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import uvloop
from aiohttp import web

from gateway import appkeys, metrics
from gateway.cancel import JobCanceller
from gateway.cors import enable_cors
from gateway.drain import StreamDrain
from gateway.fanout import EventFanout
from gateway.limits import RateLimiter, StreamLeases
from gateway.middlewares import echo_request_id, request_context
from gateway.openapi import routes as openapi_routes
from gateway.routes import batch, chat, health, openai_compat, projects, sessions, static, streams
from gateway.stalls import StallBreaker
from gateway.ticker import HeartbeatTicker
from shared.amqp import AmqpJobQueue
from shared.embedded import EmbeddedServers
from shared.gc_tuning import settle_after_startup
from shared.logging import get_logger
from shared.messages import MessageStore
from shared.redis_client import connect_redis
from shared.sessions import SessionStore
from shared.settings import GatewaySettings

log = get_logger(__name__)

# A 16,000-character question must fit in a GET URL whatever its script: percent-encoded
# UTF-8 takes up to 12 bytes a character. Header fields: up to 64 KiB each.
MAX_LINE_BYTES = 256 * 1024
MAX_FIELD_BYTES = 64 * 1024
# A stream's lease on its user's stream quota outlives a few missed heartbeats.
STREAM_LEASE_MIN_S = 30.0


def create_app(
    settings: GatewaySettings, embedded: EmbeddedServers | None = None
) -> web.Application:
    """The gateway as an aiohttp application. With no REDIS_URL/AMQP_URL it runs on the
    embedded transports, ``embedded`` or servers of its own: an in-process Redis and job queue,
    whose jobs only a worker given the same servers runs (``launcher/embedded.py``)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_context],
        handler_args={"max_line_size": MAX_LINE_BYTES, "max_field_size": MAX_FIELD_BYTES},
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.INSTANCE_ID] = uuid.uuid4().hex
    # Without a configured secret, tickets are good only on the gateway that issued them.
    app[appkeys.TICKET_SECRET] = settings.stream_ticket_secret or secrets.token_urlsafe(32)
    app.on_response_prepare.append(echo_request_id)
    app[appkeys.DRAIN] = StreamDrain(settings.drain_s)
    app[appkeys.HEARTBEAT_TICKER] = HeartbeatTicker(settings.heartbeat_interval_s)
    app.on_shutdown.append(_drain_streams)
    if settings.connections.embedded:
        app[appkeys.EMBEDDED] = embedded or EmbeddedServers()
        app.cleanup_ctx.extend([_embedded_redis, _stores, _embedded_queue, _fanout])
    else:
        app.cleanup_ctx.extend([_redis, _stores, _amqp, _fanout])
    metrics.setup(app, settings)
    app.add_routes(health.routes)
    app.add_routes(sessions.routes)
    app.add_routes(chat.routes)
    app.add_routes(streams.routes)
    app.add_routes(projects.routes)
    app.add_routes(static.routes)
    app.add_routes(openai_compat.routes)
    app.add_routes(batch.routes)
    app.add_routes(openapi_routes)
    enable_cors(app, settings.cors_origins)
    return app


def serve(app: web.Application, settings: GatewaySettings) -> None:
    """Serve ``app`` on ``settings.host``:``settings.port`` until SIGTERM or SIGINT, which close
    its streams over ``DRAIN_S`` (``python -m gateway``, ``make run``)."""
    url = f"http://{settings.host}:{settings.port}"
    mode = "embedded" if settings.connections.embedded else "redis+rabbitmq"
    log.info("gateway.starting", url=url, mode=mode, namespace=settings.connections.namespace)
    if not settings.api_keys and settings.jwt_secret is None:
        log.warning("gateway.no_credentials", hint="set AUTH_API_KEYS or AUTH_JWT_SECRET")
    app.on_startup.append(_settle_gc)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        # A client that leaves cancels its handler at once, releasing its subscription.
        handler_cancellation=True,
        # Streams close over DRAIN_S on SIGTERM; the rest of shutdown needs a little more.
        shutdown_timeout=settings.drain_s + 5,
        loop=uvloop.new_event_loop(),
    )


async def _settle_gc(app: web.Application) -> None:
    # Last of the start-up hooks: the connections and stores exist by now.
    settle_after_startup()


async def _drain_streams(app: web.Application) -> None:
    await app[appkeys.DRAIN].drain()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    app[appkeys.REDIS] = redis = connect_redis(app[appkeys.SETTINGS].connections)
    yield
    await redis.aclose()


async def _stores(app: web.Application) -> AsyncIterator[None]:
    redis, names = app[appkeys.REDIS], app[appkeys.SETTINGS].connections.names
    app[appkeys.SESSIONS] = SessionStore(redis, names)
    app[appkeys.MESSAGES] = MessageStore(redis, names)
    app[appkeys.CANCELLER] = JobCanceller(redis, names)
    settings = app[appkeys.SETTINGS]
    app[appkeys.STALLS] = StallBreaker(redis, names, settings.event_log)
    app[appkeys.RATE_LIMITER] = RateLimiter(redis, names, settings.rate_limit_per_minute)
    app[appkeys.STREAM_LEASES] = leases = StreamLeases(
        redis,
        names,
        max_streams=settings.max_streams_per_user,
        lease_s=max(3 * settings.heartbeat_interval_s, STREAM_LEASE_MIN_S),
    )
    leases.start()
    yield
    await leases.close()


async def _amqp(app: web.Application) -> AsyncIterator[None]:
    connections = app[appkeys.SETTINGS].connections
    assert connections.amqp_url is not None
    queue = AmqpJobQueue(
        connections.amqp_url,
        connections.names,
        timeout_s=connections.connect_timeout_s,
        confirm_timeout_s=connections.confirm_timeout_s,
        connection_name=f"chatstream gateway {app[appkeys.INSTANCE_ID]}",
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
        timeout_s=settings.connections.confirm_timeout_s,
    )
    await fanout.start()
    app[appkeys.FANOUT] = fanout
    yield
    await fanout.close()
