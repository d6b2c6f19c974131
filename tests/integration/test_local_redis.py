"""The local Redis topologies that ``make redis-sentinel`` starts, and that the cluster and
Sentinel tests run on: what redis-py's own clients see of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from launcher.local_redis import (
    SENTINEL_SERVICE,
    LocalRedisCluster,
    LocalSentinelGroup,
    RedisProcess,
    running,
)


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


@pytest.mark.parametrize(
    ("primaries", "replicas"),
    [(3, 1), (1, 0), (3, 0)],
    ids=["3-primaries-each-with-a-replica", "1-primary-alone", "3-primaries-alone"],
)
def test_the_cluster_has_its_primaries_and_replicas_and_serves_every_slot(
    tmp_path: Path, primaries: int, replicas: int
) -> None:
    cluster = LocalRedisCluster(tmp_path, primaries=primaries, replicas=replicas)
    with running(cluster):
        host, port = _host_port(cluster.nodes.split(",")[0])
        client = RedisCluster(startup_nodes=[ClusterNode(host, port)], decode_responses=True)
        try:
            assert len(client.get_primaries()) == primaries
            assert len(client.get_replicas()) == primaries * replicas
            keys = [f"key-{i}" for i in range(60)]
            assert len({client.keyslot(key) for key in keys}) > 3
            for key in keys:
                client.set(key, key)
            assert [client.get(key) for key in keys] == keys
        finally:
            client.close()
    assert all(server.process is None for server in cluster.servers)


def test_the_sentinels_hand_the_primary_role_to_the_replica_when_the_primary_dies(
    tmp_path: Path,
) -> None:
    group = LocalSentinelGroup(tmp_path)
    with running(group):
        assert group.primary is not None and group.replica is not None
        sentinel = Sentinel([_host_port(a) for a in group.sentinels.split(",")], socket_timeout=2)
        assert sentinel.discover_master(SENTINEL_SERVICE) == ("127.0.0.1", group.primary.port)
        group.primary.kill()
        # The sentinels agree the primary is down and promote the replica; the replica then
        # answers as the primary.
        group.replica.wait_until(
            lambda client: client.info("replication")["role"] == "master", "was promoted"
        )
        group.watchers[0].wait_until(
            lambda client: (
                client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
                == ("127.0.0.1", group.replica.port)
            ),
            "named the replica",
        )


def test_a_server_in_a_relative_folder_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = RedisProcess(Path("relative") / "redis")
    try:
        server.start()
        with server.client() as client:
            assert client.ping()
    finally:
        server.kill()
    assert (tmp_path / "relative" / "redis" / "redis.log").exists()


def test_a_server_that_cannot_start_fails_at_once_with_its_reason(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis", extra_args=["--no-such-directive", "x"])
    with pytest.raises(RuntimeError, match="no-such-directive"):
        server.start()
    assert server.process is not None and server.process.poll() is not None


def test_a_cluster_of_two_primaries_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 primaries or more"):
        LocalRedisCluster(tmp_path, primaries=2, replicas=0).start()
