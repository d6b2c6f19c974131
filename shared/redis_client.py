"""Creating the Redis client both services use."""

from __future__ import annotations

from typing import Any, TypeAlias, TypeGuard

from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.library_internals import HiredisPackingConnection, is_dropped_connection
from shared.settings import ConnectionSettings, RedisTlsSettings

# One Redis or the primary Sentinel names (Redis), or a Redis Cluster (RedisCluster): the
# commands chatstream sends read the same on either; what differs is asked of is_cluster.
RedisClient: TypeAlias = Redis | RedisCluster
RedisPipeline: TypeAlias = Pipeline | ClusterPipeline


def is_cluster(redis: RedisClient) -> TypeGuard[RedisCluster]:
    return isinstance(redis, RedisCluster)


def publish_command(redis: RedisClient) -> str:
    """The command that publishes on chatstream's channels: on a cluster SPUBLISH, whose
    channel lives on its slot's shard (a PUBLISH goes to every node), else PUBLISH (one Redis
    may be older than 7, which brought SPUBLISH)."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


def is_redis_failure(error: BaseException) -> bool:
    """Whether ``error`` is Redis failing a command: one of redis-py's errors (its cluster
    client's too, such as a slot no node serves yet after a failover), or a command written on a
    connection closed meanwhile, which redis-py does not raise as one."""
    return isinstance(error, (RedisError, RedisClusterException)) or is_dropped_connection(error)


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


def connect_redis(settings: ConnectionSettings) -> RedisClient:
    """A pooled client for the real Redis: one server, the primary the sentinels name, or a
    cluster. It connects lazily, so creating it never fails."""
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
    if settings.cluster_nodes:
        return _connect_cluster(settings, connection_options, tls)
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


def _connect_cluster(
    settings: ConnectionSettings, connection_options: dict[str, Any], tls: dict[str, Any]
) -> RedisCluster:
    """The cluster client: it learns every node and the slot map from whichever of
    ``cluster_nodes`` answers first, and follows MOVED and ASK by itself."""
    # Its own retry follows the cluster's redirections and failovers; a connection error is
    # retried as on one Redis. Its pool is per node: each node holds at most this many.
    options = {k: v for k, v in connection_options.items() if k != "retry_on_error"}
    options["retry"] = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=3)
    if tls:
        tls["ssl"] = True
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in settings.cluster_nodes],
        # A shard that is down must not stop the others' slots from being served.
        require_full_coverage=False,
        max_connections=settings.redis_max_connections,
        **options,
        **tls,
    )


def as_text(value: object) -> str:
    """A Redis reply value as text (replies are bytes unless a client decodes them)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def hash_reply(flat: list[Any]) -> dict[Any, Any]:
    """An HGETALL's raw reply (field, value, field, value...), as a script returns it, as
    redis-py's HGETALL gives it."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
