"""/metrics of the gateway and of a worker: the documented series are there, and they move when
a stream runs (on the real Redis and RabbitMQ)."""

from __future__ import annotations

import dataclasses

import aio_pika
import aiohttp
import pytest
from prometheus_client import generate_latest
from redis.asyncio import Redis

from launcher.ports import free_port
from shared.amqp import AmqpJobQueue, declare_topology
from shared.settings import ConnectionSettings
from tests.conftest import AMQP_URL, AUTH, REDIS_URL, GatewayFactory, worker_settings
from tests.ops.support import sample_value
from worker.metrics import WorkerMetrics, metrics_endpoint
from worker.queue_depth import QueueDepthProbe
from worker.worker import Worker

pytestmark = pytest.mark.real

GATEWAY_SERIES = (
    "chatstream_gateway_open_streams",
    "chatstream_gateway_streams_total",
    "chatstream_gateway_resumes_total",
    "chatstream_gateway_events_relayed_total",
    "chatstream_gateway_ttft_seconds_bucket",
    "chatstream_gateway_errors_total",
    "chatstream_gateway_http_responses_total",
)


async def test_gateway_metrics_move_when_a_stream_runs(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    metrics = WorkerMetrics("metrics-test-worker")
    async with RunningWorker(real_connections, metrics):
        before = await (await client.get("/metrics")).text()
        assert sample_value(before, "chatstream_gateway_open_streams") == 0
        assert sample_value(before, "chatstream_gateway_events_relayed_total") == 0

        response = await client.post(
            "/api/v1/chat/stream", json={"text": "one two three", "pipeline": "echo"}, headers=AUTH
        )
        assert response.status == 200
        body = await response.read()
        refused = await client.post("/api/v1/chat/stream", json={"text": "x"})
        assert refused.status == 401

        after_response = await client.get("/metrics")
        assert after_response.status == 200
        assert after_response.headers["Content-Type"].startswith("text/plain")
        after = await after_response.text()

    for name in GATEWAY_SERIES:
        assert f"\n{name}" in after, name
    relayed = sample_value(after, "chatstream_gateway_events_relayed_total")
    assert relayed == body.count(b"\nid: ") + body.startswith(b"id: ")
    assert sample_value(after, "chatstream_gateway_streams_total", close_reason="end") == 1
    assert sample_value(after, "chatstream_gateway_ttft_seconds_count") == 1
    assert sample_value(after, "chatstream_gateway_errors_total", code="unauthorized") == 1
    assert sample_value(after, "chatstream_gateway_http_responses_total", status="200") == 2
    assert sample_value(after, "chatstream_gateway_open_streams") == 0
    assert (
        sample_value(
            metrics_text := _render(metrics),
            "chatstream_worker_jobs_total",
            worker_id="metrics-test-worker",
            pipeline="echo",
            outcome="stop",
        )
        == 1
    ), metrics_text


async def test_worker_metrics_port_serves_jobs_and_queue_depth(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    settings = dataclasses.replace(
        worker_settings(real_connections, worker_id="w-7"), metrics_port=free_port()
    )
    metrics = WorkerMetrics(settings.worker_id)
    async with (
        RunningWorker(real_connections, metrics),
        metrics_endpoint(settings, metrics) as port,
    ):
        assert port == settings.metrics_port
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as http:
            before = await (await http.get(url)).text()
            response = await client.post(
                "/api/v1/chat/stream", json={"text": "a b", "pipeline": "echo"}, headers=AUTH
            )
            await response.read()
            after = await (await http.get(url)).text()

    jobs = {"worker_id": "w-7", "pipeline": "echo", "outcome": "stop"}
    assert sample_value(before, "chatstream_worker_jobs_total", **jobs) is None
    assert sample_value(after, "chatstream_worker_jobs_total", **jobs) == 1
    assert sample_value(after, "chatstream_worker_tokens_total", pipeline="echo") == 2
    assert sample_value(after, "chatstream_worker_ttft_seconds_count", pipeline="echo") == 1
    assert sample_value(after, "chatstream_worker_job_duration_seconds_count", pipeline="echo") == 1
    queue = real_connections.names.jobs_queue
    assert sample_value(after, "chatstream_queue_depth", queue=queue) == 0


async def test_queue_depth_is_what_the_broker_holds(real_connections: ConnectionSettings) -> None:
    names = real_connections.names
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange, _ = await declare_topology(channel, names)
        for n in range(3):
            await exchange.publish(
                aio_pika.Message(b"job %d" % n), routing_key=names.jobs_routing_key
            )
        probe = QueueDepthProbe(AMQP_URL, names.jobs_queue, timeout_s=2.0)
        try:
            assert await probe.read() == 3
            missing = QueueDepthProbe(AMQP_URL, f"{names.jobs_queue}.missing", timeout_s=2.0)
            assert await missing.read() is None
            await missing.close()
        finally:
            await probe.close()


async def test_gateway_metrics_on_their_own_port(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    port = free_port()
    client = await start_gateway(real_connections, metrics_port=port)
    assert (await client.get("/metrics")).status == 404
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status == 200
        assert "chatstream_gateway_open_streams" in await response.text()


def _render(metrics: WorkerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


class RunningWorker:
    """A real worker in this process, with metrics, for the length of a block."""

    def __init__(self, connections: ConnectionSettings, metrics: WorkerMetrics) -> None:
        self._settings = worker_settings(connections, worker_id=metrics.worker_id)
        self._metrics = metrics
        self._redis = Redis.from_url(REDIS_URL)
        assert connections.amqp_url is not None
        self._queue = AmqpJobQueue(connections.amqp_url, connections.names, timeout_s=2.0)
        self._worker: Worker | None = None

    async def __aenter__(self) -> Worker:
        self._queue.start()
        self._worker = Worker(self._settings, self._redis, self._queue, metrics=self._metrics)
        await self._worker.start()
        return self._worker

    async def __aexit__(self, *_: object) -> None:
        assert self._worker is not None
        await self._worker.close()
        await self._redis.aclose()
