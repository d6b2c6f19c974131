"""A worker that goes silent mid-job: its clients get an `error` event, the message `error`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shared.amqp import AmqpJobQueue
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, worker_settings
from tests.support.chat import create_session, messages_of
from tests.support.sse import iter_sse
from worker.job_run import JobRun
from worker.pipelines import PipelineResult
from worker.worker import Worker


class HangingPipeline:
    """Reports one step, then hangs the way a wedged model call would."""

    async def run(self, run: JobRun) -> PipelineResult:
        await run.progress("start", "Starting")
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.fixture
async def hanging_worker(real_connections: ConnectionSettings) -> AsyncIterator[Worker]:
    assert real_connections.redis_url and real_connections.amqp_url
    redis = Redis.from_url(real_connections.redis_url)
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
