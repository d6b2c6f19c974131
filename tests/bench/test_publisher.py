"""The synthetic worker's bare Redis connection and its publishing, against the real Redis: the
events it appends are the ones a worker appends, and it offers exactly the events its rate and
duration call for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hiredis
import pytest

from bench.publisher import SyntheticJobs, publish_for
from bench.resp import RespConnection
from shared import replay_log
from shared.names import Names
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.real


@pytest.fixture
async def resp() -> AsyncIterator[RespConnection]:
    connection = await RespConnection.open(REDIS_URL)
    yield connection
    await connection.aclose()


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
    resp: RespConnection, namespace: str
) -> None:
    names = Names(namespace)
    jobs = SyntheticJobs(resp, names, ["job-a", "job-b"])
    await jobs.publish(5)
    await jobs.publish(2)
    # Read back as a gateway reads a job's log.
    client = connect_redis(ConnectionSettings(redis_url=REDIS_URL, namespace=namespace))
    try:
        logged = {
            job: [e.seq for e in await replay_log.read_after(client, names, job, 0)]
            for job in ("job-a", "job-b")
        }
    finally:
        await client.aclose()
    assert logged == {"job-a": [1, 2, 3, 4], "job-b": [1, 2, 3]}
    assert jobs.published == 7


async def test_a_rate_offers_exactly_rate_times_duration(
    resp: RespConnection, namespace: str
) -> None:
    jobs = SyntheticJobs(resp, Names(namespace), ["job-a"])
    await publish_for(jobs, rate=1_000, duration_s=0.2)
    assert jobs.published == 200
