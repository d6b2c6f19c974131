"""Creating the Redis client both services use."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import ConnectionSettings


def connect_redis(settings: ConnectionSettings) -> Redis:
    """A pooled client for the real Redis; it connects lazily, so creating it never fails."""
    if settings.redis_url is None:
        raise ValueError("connect_redis needs REDIS_URL; embedded mode uses EmbeddedServers")
    # A blocking pool: under a burst, a command waits briefly for a free connection instead
    # of failing with "Too many connections".
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=max(settings.connect_timeout_s, 5.0),
        socket_connect_timeout=settings.connect_timeout_s,
        # A command waits at most this long for Redis; a request must fail fast, not hang.
        socket_timeout=max(settings.connect_timeout_s, 5.0),
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


def as_text(value: object) -> str:
    """A Redis reply value as text (replies are bytes unless a client decodes them)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
