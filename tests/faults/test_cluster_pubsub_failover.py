"""A Redis Cluster primary is killed under open streams: its replica takes over (after the
cluster's node timeout and an election), the gateway's fanout joins the shard's channels on it
and backfills them from the replay log. Every stream gets every event once and in order; the
streams on the other shards are never held."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.fanout import EventFanout
from launcher.local_redis import LocalRedisCluster, running
from tests.support.redis_cluster import (
    Collector,
    Publisher,
    cluster_client,
    cluster_names,
    jobs_on_each_primary,
    pubsub_links,
    server_of,
    until,
)

BEFORE_KILL = 10
AFTER_KILL = 20


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A cluster of its own: the test kills one of its primaries."""
    started = LocalRedisCluster(tmp_path / "redis-cluster")
    with running(started):
        yield started


@pytest.mark.timeout(120)
async def test_streams_on_a_killed_primary_go_on_from_its_replica_with_no_gap(
    cluster: LocalRedisCluster, namespace: str
) -> None:
    names = cluster_names(cluster, namespace)
    client = cluster_client(cluster, namespace)
    await client.initialize()
    fanout = EventFanout(client, names, "test", timeout_s=5.0)
    await fanout.start()
    jobs = jobs_on_each_primary(client, names, 3, "failover")
    streams = [Collector() for _ in jobs]
    publishers = [Publisher(client, names, job) for job in jobs]
    try:
        for job, stream in zip(jobs, streams, strict=True):
            await fanout.subscribe(job, stream)
        for publisher in publishers:
            await publisher.publish(BEFORE_KILL)
        node = client.get_node_from_key(names.job_channel(jobs[0]))
        assert node is not None
        victim = server_of(cluster, node.name)
        with victim.client() as primary:
            # Every event so far is on the replica: the kill loses none of the log (Redis
            # replicates asynchronously; a loss would be Redis's, not the fanout's).
            assert primary.execute_command("WAIT", 1, 5000) == 1
        victim.kill()
        # Appends to the dead shard are sent again until its replica has taken over.
        await asyncio.gather(
            *(publisher.publish(AFTER_KILL, pause_s=0.02) for publisher in publishers)
        )
        total = BEFORE_KILL + AFTER_KILL
        await until(
            lambda: all(stream.queued_seq >= total for stream in streams), "caught up", 30.0
        )
        for stream in streams:
            assert stream.seqs == list(range(1, total + 1))
        assert streams[0].holds >= 1
        assert [stream.holds for stream in streams[1:]] == [0, 0]
        promoted = client.get_node_from_key(names.job_channel(jobs[0]))
        assert promoted is not None and promoted.name != node.name
        assert pubsub_links(server_of(cluster, promoted.name)) == 1
    finally:
        await fanout.close()
        await client.aclose()
