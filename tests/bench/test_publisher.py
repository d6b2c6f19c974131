"""The synthetic worker's bare Redis connection and its publishing, against the real Redis and a
local Redis Cluster: the events it appends are the ones a worker appends, each on the shard that
serves its job, and it offers exactly the events its rate and duration call for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hiredis
import pytest

from bench.publisher import SyntheticJobs, publish_for
from bench.resp import RespConnection
from bench.shards import Shards
from launcher.local_redis import LocalRedisCluster
from shared import replay_log
from shared.names import Names
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import REDIS_URL, cluster_connections

pytestmark = pytest.mark.real


@pytest.fixture
async def resp() -> AsyncIterator[RespConnection]:
    connection = await RespConnection.open(REDIS_URL)
    yield connection
    await connection.aclose()


@pytest.fixture
async def one_redis() -> AsyncIterator[Shards]:
    shards = await Shards.one_redis(REDIS_URL)
    await shards.on_each(("SCRIPT", "LOAD", replay_log.APPEND_EVENTS.text))
    yield shards
    await shards.aclose()


async def test_replies_come_back_in_order_and_an_error_is_raised_after_all_are_read(
    resp: RespConnection, namespace: str
) -> None:
    key = f"{namespace}:counter"
    assert await resp.execute([("INCR", key), ("INCRBY", key, 2), ("DEL", key)]) == [1, 3, 1]
    with pytest.raises(hiredis.ReplyError):
        await resp.execute([("SET", key, "a"), ("INCR", key), ("DEL", key)])
    # The error's batch was read to its end: the next reply is the next command's.
    assert await resp.execute([("EXISTS", key)]) == [0]


async def test_published_events_are_in_each_jobs_replay_log_in_seq_order(
    one_redis: Shards, namespace: str
) -> None:
    names = Names(namespace)
    jobs = SyntheticJobs(one_redis, names, ["job-a", "job-b"])
    await jobs.publish(5)
    await jobs.publish(2)
    settings = ConnectionSettings(redis_url=REDIS_URL, namespace=namespace)
    assert await logged_seqs(settings, ["job-a", "job-b"]) == {
        "job-a": [1, 2, 3, 4],
        "job-b": [1, 2, 3],
    }
    assert jobs.published == 7
    assert list(jobs.spread().values()) == [{"jobs": 2, "events": 7, "writes": 2}]


async def test_on_a_cluster_each_jobs_events_go_to_the_primary_that_serves_its_session(
    redis_cluster: LocalRedisCluster, namespace: str
) -> None:
    settings = cluster_connections(redis_cluster, namespace)
    # Server-made job ids start with their session's: the jobs of a session share a slot.
    job_ids = [f"{session}.{job:032x}" for session in range(30) for job in (1, 2)]
    shards = await Shards.cluster(redis_cluster.nodes)
    try:
        assert len(shards.shards) == 3 and shards.publish_command == "SPUBLISH"
        await shards.on_each(("SCRIPT", "LOAD", replay_log.APPEND_EVENTS.text))
        jobs = SyntheticJobs(shards, settings.names, job_ids)
        await jobs.publish(len(job_ids) * 2)
    finally:
        await shards.aclose()
    logged = await logged_seqs(settings, job_ids)
    assert logged == {job_id: [1, 2] for job_id in job_ids}
    spread = jobs.spread().values()
    assert sum(s["jobs"] for s in spread) == len(job_ids)
    assert sum(s["events"] for s in spread) == len(job_ids) * 2
    assert all(s["jobs"] > 0 for s in spread)


async def logged_seqs(settings: ConnectionSettings, job_ids: list[str]) -> dict[str, list[int]]:
    """Each job's logged seqs, read back as a gateway reads a job's log."""
    client = connect_redis(settings)
    try:
        return {
            job: [e.seq for e in await replay_log.read_after(client, settings.names, job, 0)]
            for job in job_ids
        }
    finally:
        await client.aclose()


async def test_a_rate_offers_exactly_rate_times_duration(one_redis: Shards, namespace: str) -> None:
    jobs = SyntheticJobs(one_redis, Names(namespace), ["job-a"])
    await publish_for(jobs, rate=1_000, duration_s=0.2)
    assert jobs.published == 200
