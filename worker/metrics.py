"""The worker's Prometheus series (see docs/logging.md, "Metrics"), served on
``WORKER_METRICS_PORT`` by each worker process."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics_http import (
    TTFT_BUCKETS_S,
    Handler,
    metrics_handler,
    new_registry,
    start_metrics_site,
)
from shared.settings import WorkerSettings
from worker.queue_depth import QueueDepthProbe

READYZ_PATH = "/readyz"
DURATION_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class WorkerMetrics:
    """The series of one worker process, labelled with its ``worker_id``."""

    def __init__(self, worker_id: str, registry: CollectorRegistry | None = None) -> None:
        self.worker_id = worker_id
        self.registry = registry or new_registry()
        self.jobs = Counter(
            "chatstream_worker_jobs",
            "Jobs finished, by worker, pipeline and outcome (stop, cancelled, length, error)",
            ["worker_id", "pipeline", "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "chatstream_worker_tokens",
            "Tokens produced, by pipeline",
            ["pipeline"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "chatstream_worker_job_duration_seconds",
            "From a job's start to its final event, by pipeline",
            ["pipeline"],
            buckets=DURATION_BUCKETS_S,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "chatstream_worker_ttft_seconds",
            "From a job's start to its first token, by pipeline",
            ["pipeline"],
            buckets=TTFT_BUCKETS_S,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "chatstream_queue_depth",
            "Jobs ready in the broker's queue, read from RabbitMQ at each scrape",
            ["queue"],
            registry=self.registry,
        )

    def job_finished(
        self, *, pipeline: str, outcome: str, duration_ms: int, ttft_ms: int | None, tokens: int
    ) -> None:
        self.jobs.labels(worker_id=self.worker_id, pipeline=pipeline, outcome=outcome).inc()
        self.tokens.labels(pipeline=pipeline).inc(tokens)
        self.duration.labels(pipeline=pipeline).observe(duration_ms / 1000)
        if ttft_ms is not None:
            self.ttft.labels(pipeline=pipeline).observe(ttft_ms / 1000)

    async def refresh_queue_depth(self, probe: QueueDepthProbe) -> None:
        depth = await probe.read()
        # NaN leaves a gap in the graph rather than a stale number.
        self.queue_depth.labels(queue=probe.queue).set(math.nan if depth is None else depth)


@asynccontextmanager
async def metrics_endpoint(
    settings: WorkerSettings, metrics: WorkerMetrics, *, readyz: Handler | None = None
) -> AsyncIterator[int]:
    """Serve ``/metrics`` (and ``/readyz``, when given) on ``settings.metrics_port`` (0 = off)
    for the block; yields the bound port, or 0 when off."""
    connections = settings.connections
    if not settings.metrics_port or connections.amqp_url is None:
        yield 0
        return
    probe = QueueDepthProbe(
        connections.amqp_url, connections.names.jobs_queue, timeout_s=connections.connect_timeout_s
    )

    async def refresh() -> None:
        await metrics.refresh_queue_depth(probe)

    runner, port = await start_metrics_site(
        metrics_handler(metrics.registry, refresh),
        settings.metrics_host,
        settings.metrics_port,
        extra_routes={READYZ_PATH: readyz} if readyz is not None else None,
    )
    try:
        yield port
    finally:
        await runner.cleanup()
        await probe.close()
