"""Typed keys for what the gateway keeps on its application and requests."""

from __future__ import annotations

from aiohttp import web

from gateway.cancel import JobCanceller
from gateway.drain import StreamDrain
from gateway.fanout import EventFanout
from gateway.limits import RateLimiter, StreamLeases
from gateway.stalls import StallBreaker
from gateway.ticker import HeartbeatTicker
from shared.embedded import EmbeddedServers
from shared.jobqueue import JobPublisher
from shared.messages import MessageStore
from shared.redis_client import RedisClient
from shared.sessions import SessionStore
from shared.settings import GatewaySettings

SETTINGS = web.AppKey("settings", GatewaySettings)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
JOB_PUBLISHER = web.AppKey("job_publisher", JobPublisher)
FANOUT = web.AppKey("fanout", EventFanout)
EMBEDDED = web.AppKey("embedded", EmbeddedServers)
INSTANCE_ID = web.AppKey("instance_id", str)
SESSIONS = web.AppKey("sessions", SessionStore)
MESSAGES = web.AppKey("messages", MessageStore)
CANCELLER = web.AppKey("canceller", JobCanceller)
TICKET_SECRET = web.AppKey("ticket_secret", str)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
STREAM_LEASES = web.AppKey("stream_leases", StreamLeases)
STALLS = web.AppKey("stalls", StallBreaker)
DRAIN = web.AppKey("drain", StreamDrain)
HEARTBEAT_TICKER = web.AppKey("heartbeat_ticker", HeartbeatTicker)

# Request-scoped values, set by the middlewares.
REQUEST_ID = web.RequestKey("request_id", str)
USER_ID = web.RequestKey("user_id", str)
STARTED_AT = web.RequestKey("started_at", float)
# The status of a response whose headers have gone out: the summary line's status when the
# handler is cancelled afterwards (a client that closes a stream once it has read the end).
SENT_STATUS = web.RequestKey("sent_status", int)
