"""Redis Cluster under faults, with real gateway and worker processes on a local cluster of 3
primaries and 3 replicas: a primary that holds live jobs is killed and its replica takes over;
the slot of a live job moves to another primary mid-stream. Each open stream completes with
every seq once and in order (or a ``reset`` and a fresh copy), none hangs, and new requests
meanwhile get 503 with Retry-After, or succeed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from launcher.local_redis import LocalRedisCluster
from tests.conftest import cluster_connections
from tests.support.followed_streams import (
    assert_outage_survived,
    read_numbered,
    start_chat,
)
from tests.support.processes import ProcessGroup, chat_processes
from tests.support.redis_cluster import SlotMove, cluster_client, owner_of, server_of

TEXT = " ".join(f"word{i}" for i in range(40))
STREAMS = 6

pytestmark = pytest.mark.real


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalRedisCluster]:
    """A cluster of its own: the test kills or moves part of it."""
    cluster = LocalRedisCluster(tmp_path / "cluster")
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def processes(
    cluster: LocalRedisCluster, namespace: str, tmp_path: Path
) -> AsyncIterator[ProcessGroup]:
    group = chat_processes(cluster_connections(cluster, namespace), tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


async def test_streams_complete_when_a_primary_with_live_jobs_dies(
    cluster: LocalRedisCluster, processes: ProcessGroup
) -> None:
    gateway = await processes.gateway(CONNECT_TIMEOUT_S="0.5")
    await processes.worker(ECHO_TOKEN_DELAY_MS="60")
    names = processes.connections.names
    admin = cluster_client(cluster, names.namespace)
    async with aiohttp.ClientSession() as http:
        opened = [await start_chat(http, gateway.url, TEXT) for _ in range(STREAMS)]
        firsts = [await read_numbered(response, until_seq=8) for _, response in opened]
        await admin.initialize()
        server_of(cluster, owner_of(admin, names.job_channel(opened[0][0]))).kill()
        await assert_outage_survived(http, gateway.url, opened, firsts, TEXT)
    await admin.aclose()


async def test_a_live_jobs_slot_moves_to_another_primary_mid_stream(
    cluster: LocalRedisCluster, processes: ProcessGroup
) -> None:
    """The gateway is told (Redis drops the slot's sharded subscription) and subscribes on the
    new owner, the worker's appends wait out the move (TRYAGAIN) and go to the new owner: the
    stream goes on, on its first connection, with no gap and no duplicate."""
    gateway = await processes.gateway()
    await processes.worker(ECHO_TOKEN_DELAY_MS="60")
    names = processes.connections.names
    admin = cluster_client(cluster, names.namespace)
    async with aiohttp.ClientSession() as http:
        job_id, response = await start_chat(http, gateway.url, TEXT)
        first = await read_numbered(response, until_seq=8)
        await admin.initialize()
        channel = names.job_channel(job_id)
        source = owner_of(admin, channel)
        primaries = [node.name for node in admin.get_primaries()]
        target = next(name for name in primaries if name != source)
        await asyncio.to_thread(SlotMove(admin.keyslot(channel), source, target, primaries).run)
        rest = await read_numbered(response)
    await admin.aclose()
    seen = first + rest
    assert [m.type for m in seen][-1] == "end", [m.type for m in seen]
    assert "reset" not in [m.type for m in seen]
    assert [int(m.id or 0) for m in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].json["content"] == TEXT
