"""Reading and changing a local Redis Cluster's slot map from a test: who owns a key, killing a
primary, moving a slot to another primary mid-stream as ``redis-cli --cluster reshard`` does."""

from __future__ import annotations

from redis.crc import key_slot

from launcher.local_redis import LocalRedisCluster, RedisProcess


def slot_of(key: str) -> int:
    return int(key_slot(key.encode()))


def owner_of(cluster: LocalRedisCluster, slot: int) -> RedisProcess:
    """The primary that serves ``slot``, by any live node's slot map."""
    for server in cluster.servers:
        if server.process is None:
            continue
        with server.client() as client:
            for start, end, primary, *_ in client.cluster("SLOTS"):
                if start <= slot <= end:
                    return _server_on(cluster, int(primary[1]))
    raise AssertionError(f"no live node knows slot {slot}")


def primaries(cluster: LocalRedisCluster) -> list[RedisProcess]:
    for server in cluster.servers:
        if server.process is None:
            continue
        with server.client() as client:
            ports = {int(primary[1]) for _, _, primary, *_ in client.cluster("SLOTS")}
        return [_server_on(cluster, port) for port in sorted(ports)]
    raise AssertionError("no live node")


def move_slot(cluster: LocalRedisCluster, slot: int, target: RedisProcess) -> None:
    """Migrate ``slot``, keys and all, to ``target``: IMPORTING and MIGRATING, MIGRATE of each
    key, then every primary told the new owner (Redis then drops the slot's sharded
    subscriptions on the old owner)."""
    source = owner_of(cluster, slot)
    assert source is not target
    with source.client() as src, target.client() as dst:
        source_id, target_id = src.cluster("MYID"), dst.cluster("MYID")
        dst.cluster("SETSLOT", slot, "IMPORTING", source_id)
        src.cluster("SETSLOT", slot, "MIGRATING", target_id)
        while keys := src.cluster("GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        dst.cluster("SETSLOT", slot, "NODE", target_id)
        src.cluster("SETSLOT", slot, "NODE", target_id)
    for primary in primaries(cluster):
        if primary not in (source, target):
            with primary.client() as client:
                client.cluster("SETSLOT", slot, "NODE", target_id)


def _server_on(cluster: LocalRedisCluster, port: int) -> RedisProcess:
    return next(server for server in cluster.servers if server.port == port)
