"""A worker that goes silent mid-job: its clients get an `error` event, the message `error`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.amqp import AmqpJobQueue
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, worker_settings
from tests.support.chat import create_session, messages_of
from tests.support.sse import iter_sse
from worker.job_run import JobRun
from worker.pipelines import PipelineResult
from worker.worker import Worker

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too


class HangingPipeline:
    """Reports one step, then hangs the way a wedged model call would."""

    async def run(self, run: JobRun) -> PipelineResult:
        await run.progress("start", "Starting")
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.fixture
async def hanging_worker(real_connections: ConnectionSettings) -> AsyncIterator[Worker]:
    assert real_connections.amqp_url
    redis = connect_redis(real_connections)
    queue = AmqpJobQueue(real_connections.amqp_url, real_connections.names, timeout_s=2.0)
    queue.start()
    worker = Worker(
        worker_settings(real_connections, shutdown_grace_s=0.1),
        redis,
        queue,
        pipelines={"echo": HangingPipeline()},
    )
    await worker.start()
    yield worker
    await worker.close()
    await redis.aclose()


async def test_a_silent_job_ends_with_an_error_event_and_an_error_message(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, hanging_worker: Worker
) -> None:
    gateway = await start_gateway(real_connections, heartbeat_interval_s=0.1, job_stall_s=0.5)
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "will it answer", "pipeline": "echo"},
        headers=AUTH,
    )
    seen = [m async for m in iter_sse(response) if m.id is not None]
    assert [m.type for m in seen] == ["start", "progress", "error"]
    assert [int(m.id or 0) for m in seen] == [1, 2, 3]
    assert seen[-1].json["code"] == "job_stalled"
    assistant = (await messages_of(gateway, sid))[1]
    assert assistant["status"] == "error"
    job_id = response.headers["X-Job-Id"]
    late = await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)
    assert late.status == 409  # it has ended


async def test_a_stalled_job_of_a_deleted_session_brings_nothing_back(
    real_connections: ConnectionSettings,
) -> None:
    """A gateway that ends a job as stalled after its session was deleted (its message and
    record gone) publishes the error for the streams still open, but recreates no job record,
    and the log lives only the grace of a deleted session's jobs."""
    from gateway.stalls import StallBreaker
    from shared.messages import DELETED_JOB_LOG_GRACE_S
    from shared.settings import EventLogSettings

    redis = connect_redis(real_connections)
    names = real_connections.names
    try:
        # Ids as the gateway makes them: a job's and a message's start with their session's.
        job_id, message_id = "s1.job1", "s1.message1"
        await redis.xadd(names.job_replay_log(job_id), {"e": b"x"}, id="1-0")
        breaker = StallBreaker(redis, names, EventLogSettings())
        assert await breaker.fail(job_id, message_id, last_seq=1, stall_s=0.5)
        assert not await redis.exists(names.job_meta(job_id))
        assert 0 < await redis.ttl(names.job_replay_log(job_id)) <= DELETED_JOB_LOG_GRACE_S
    finally:
        await redis.aclose()
