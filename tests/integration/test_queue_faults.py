"""What happens around the queue on the real servers: a job that waits for a worker, a malformed
message, a run that fails where nothing expected it, and streams abandoned by their clients."""

from __future__ import annotations

import asyncio

import aio_pika
from redis.asyncio import Redis
from structlog.testing import capture_logs

from gateway import appkeys
from shared.settings import ConnectionSettings
from tests.conftest import AMQP_URL, AUTH, REDIS_URL, GatewayFactory, WorkerFactory
from tests.support.sse import iter_sse
from worker.metrics import WorkerMetrics


async def test_a_queued_job_gets_heartbeats_then_completes_when_a_worker_starts(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    gateway = await start_gateway(real_connections, heartbeat_interval_s=0.05)
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "patience pays", "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200
    seen: list[str] = []
    phases: list[str] = []
    async for message in iter_sse(response):
        if not message.data:
            continue
        seen.append(str(message.type))
        if message.type == "heartbeat":
            phases.append(message.json["phase"])
            if phases.count("queued") == 3:
                await start_worker(real_connections)
        if message.type == "end":
            assert message.json["content"] == "patience pays"
            break
    assert phases[:3] == ["queued"] * 3
    assert seen.index("start") > seen.index("heartbeat")
    assert seen[-1] == "end"


async def test_a_malformed_job_is_dead_lettered_and_the_worker_carries_on(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    gateway = await start_gateway(real_connections)  # declares the queues
    names = real_connections.names
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(names.jobs_exchange)
        for garbage in (b"\xc1 not msgpack", b"\x93\x01\x02\x03"):
            await exchange.publish(aio_pika.Message(garbage), routing_key=names.jobs_routing_key)
        await start_worker(real_connections)
        response = await gateway.post(
            "/api/v1/chat/stream", json={"text": "still alive", "pipeline": "echo"}, headers=AUTH
        )
        events = [m.json async for m in iter_sse(response) if m.data]
        assert events[-1]["type"] == "end" and events[-1]["content"] == "still alive"
        dead = await channel.declare_queue(names.dead_letter_queue, passive=True)
        bodies = []
        for _ in range(100):
            message = await dead.get(fail=False)
            if message is None:
                if len(bodies) == 2:
                    break
                await asyncio.sleep(0.05)
                continue
            bodies.append(message.body)
            await message.ack()
        assert sorted(bodies) == sorted([b"\xc1 not msgpack", b"\x93\x01\x02\x03"])


class AccountingFailsOnce(WorkerMetrics):
    """Fails the first job's accounting, once its final event is out: an error that no branch
    of the worker foresees."""

    failed = False

    def job_finished(
        self, *, pipeline: str, outcome: str, duration_ms: int, ttft_ms: int | None, tokens: int
    ) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the accounting failed")
        super().job_finished(
            pipeline=pipeline,
            outcome=outcome,
            duration_ms=duration_ms,
            ttft_ms=ttft_ms,
            tokens=tokens,
        )


async def test_a_run_that_fails_where_nothing_expected_it_is_handed_back_not_left_unacked(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    gateway = await start_gateway(real_connections)
    with capture_logs() as logs:
        await start_worker(real_connections, metrics=AccountingFailsOnce("test-worker"))
        response = await gateway.post(
            "/api/v1/chat/stream", json={"text": "once only", "pipeline": "echo"}, headers=AUTH
        )
        events = [m.json async for m in iter_sse(response) if m.data]
        # Handed back, the job runs again, finds its final event published and is acked.
        for _ in range(200):
            if any(line["event"] == "job.already_finished" for line in logs):
                break
            await asyncio.sleep(0.05)
    assert [e["type"] for e in events if e["type"] in ("end", "error")] == ["end"]
    assert events[-1]["content"] == "once only"
    requeued = [line for line in logs if line["event"] == "job.requeued"]
    assert [line["reason"] for line in requeued] == ["unexpected_error"]
    assert [line["redelivered"] for line in logs if line["event"] == "job.started"] == [
        False,
        True,
    ]
    assert any(line["event"] == "job.already_finished" for line in logs)


async def test_a_thousand_abandoned_streams_leave_no_subscription_behind(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(real_connections)
    fanout = gateway.app[appkeys.FANOUT]
    job_ids: list[str] = []
    slots = asyncio.Semaphore(50)

    async def open_and_abandon(i: int) -> None:
        async with slots:
            response = await gateway.post(
                "/api/v1/chat/stream", json={"text": f"bye {i}", "pipeline": "echo"}, headers=AUTH
            )
            assert response.status == 200
            job_ids.append(response.headers["X-Job-Id"])
            await response.content.readuntil(b"\n\n")  # the retry line: the stream is open
            response.close()  # drop the connection without reading on

    await asyncio.gather(*(open_and_abandon(i) for i in range(1000)))
    redis = Redis.from_url(REDIS_URL)
    try:
        channels = [real_connections.names.job_channel(job_id) for job_id in job_ids]
        for _ in range(200):
            counts = await redis.pubsub_numsub(*channels)
            if fanout.channel_count == 0 and all(count == 0 for _, count in counts):
                break
            await asyncio.sleep(0.05)
        assert fanout.subscriber_count == 0
        assert fanout.channel_count == 0
        assert all(count == 0 for _, count in await redis.pubsub_numsub(*channels))
    finally:
        await redis.aclose()
