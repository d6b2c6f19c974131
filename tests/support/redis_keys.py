"""Every key of a namespace, on one Redis or on every primary of a cluster."""

from __future__ import annotations

from redis.asyncio.cluster import RedisCluster

from shared.names import Names
from shared.redis_client import RedisClient, is_cluster


async def namespace_keys(redis: RedisClient, names: Names) -> set[str]:
    if is_cluster(redis):
        scan = redis.scan_iter(match=names.key_pattern, target_nodes=RedisCluster.PRIMARIES)
    else:
        scan = redis.scan_iter(match=names.key_pattern)
    return {key.decode() async for key in scan}
