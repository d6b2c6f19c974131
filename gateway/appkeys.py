"""Typed keys for what the gateway keeps on its application and requests."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from gateway.fanout import EventFanout
from shared.embedded import EmbeddedServers
from shared.jobqueue import JobPublisher
from shared.settings import GatewaySettings

SETTINGS = web.AppKey("settings", GatewaySettings)
REDIS = web.AppKey("redis", Redis)
JOB_PUBLISHER = web.AppKey("job_publisher", JobPublisher)
FANOUT = web.AppKey("fanout", EventFanout)
EMBEDDED = web.AppKey("embedded", EmbeddedServers)
INSTANCE_ID = web.AppKey("instance_id", str)

# Request-scoped values, set by the middlewares.
REQUEST_ID = web.RequestKey("request_id", str)
USER_ID = web.RequestKey("user_id", str)
STARTED_AT = web.RequestKey("started_at", float)
