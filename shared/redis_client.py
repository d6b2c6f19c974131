"""Creating the Redis client both services use."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.library_internals import HiredisPackingConnection
from shared.settings import ConnectionSettings, RedisTlsSettings


def tcp_connection_class(url: str) -> dict[str, type[Connection]]:
    """The pool argument that packs commands with hiredis, for a ``redis://`` URL; nothing for
    the others (``rediss://`` and ``unix://`` keep the connection classes redis-py picks)."""
    return {"connection_class": HiredisPackingConnection} if url.startswith("redis://") else {}


def tls_options(tls: RedisTlsSettings) -> dict[str, Any]:
    """redis-py's arguments for a TLS connection with ``tls``'s files. Its defaults verify the
    certificate and the host name, against the system's CAs when no CA file is given."""
    return {"ssl_ca_certs": tls.ca_file, "ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}


class SentinelBlockingConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool, which asks the sentinels for the primary on each new connection, with
    the standalone pool's wait for a free connection under a burst."""


def connect_redis(settings: ConnectionSettings) -> Redis:
    """A pooled client for the real Redis, one server or the primary the sentinels name; it
    connects lazily, so creating it never fails."""
    connection_options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout_s,
        # A command waits at most this long for Redis; a request must fail fast, not hang.
        "socket_timeout": max(settings.connect_timeout_s, 5.0),
        "health_check_interval": 30,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), retries=1),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        # RESP2: under RESP3, redis-py hands each pub/sub message to a push handler that
        # formats it into a debug log line whether or not anything logs it, a third of the
        # gateway's cost of reading one event when it was measured.
        "protocol": 2,
        "password": settings.redis_password,
    }
    # A blocking pool: under a burst, a command waits briefly for a free connection instead
    # of failing with "Too many connections".
    pool_options: dict[str, Any] = {
        "max_connections": settings.redis_max_connections,
        "timeout": max(settings.connect_timeout_s, 5.0),
    }
    tls = {} if settings.redis_tls is None else tls_options(settings.redis_tls)
    if settings.sentinel is not None:
        # The sentinels and the servers they name take the same TLS (RedisTlsSettings).
        if tls:
            tls["ssl"] = True
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            settings.sentinel.sentinels,
            sentinel_kwargs={
                "socket_connect_timeout": settings.connect_timeout_s,
                "socket_timeout": settings.connect_timeout_s,
                "password": settings.sentinel.password,
                "protocol": 2,
                **tls,
            },
            **connection_options,
            **tls,
        )
        client: Redis = sentinel.master_for(
            settings.sentinel.service,
            connection_pool_class=SentinelBlockingConnectionPool,
            **pool_options,
        )
        return client
    if settings.redis_url is None:
        raise ValueError("connect_redis needs Redis; embedded mode uses EmbeddedServers")
    # The URL's scheme chooses TLS (rediss://: redis-py's SSLConnection); the settings allow
    # TLS files with no other scheme.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        **tcp_connection_class(settings.redis_url),
        **pool_options,
        **connection_options,
        **tls,
    )
    return Redis.from_pool(pool)


def as_text(value: object) -> str:
    """A Redis reply value as text (replies are bytes unless a client decodes them)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
