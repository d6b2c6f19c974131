"""The series names the deployment files may query: chatstream's own (read from its metric
classes) and those of the exporters the compose observability profile runs."""

from __future__ import annotations

from prometheus_client import generate_latest

from gateway.metrics import GatewayMetrics
from tests.ops.support import family_names
from worker.metrics import WorkerMetrics

# RabbitMQ's prometheus plugin, /metrics/detailed, families queue_coarse_metrics and
# queue_consumer_count (its docs' metrics.md), each labelled by vhost and queue. No RabbitMQ
# here serves them (the plugin is off on the shared broker), so they are pinned.
RABBITMQ_QUEUE_SERIES = {
    "rabbitmq_detailed_queue_messages_ready",
    "rabbitmq_detailed_queue_messages_unacked",
    "rabbitmq_detailed_queue_messages",
    "rabbitmq_detailed_queue_consumers",
}
# Written by Prometheus itself for every target.
PROMETHEUS_SERIES = {"up"}


def exposed_series() -> dict[str, set[str]]:
    """Every series name the gateway and worker expose, with the labels each one carries."""
    gateway, worker = GatewayMetrics(), WorkerMetrics("w")
    gateway.errors.labels(code="x")
    gateway.streams.labels(close_reason="x")
    gateway.responses.labels(status="200")
    worker.jobs.labels(worker_id="w", pipeline="p", outcome="o")
    worker.queue_depth.labels(queue="q").set(0)
    worker.duration.labels(pipeline="p")
    worker.ttft.labels(pipeline="p")
    worker.tokens.labels(pipeline="p")
    series: dict[str, set[str]] = {}
    for registry in (gateway.registry, worker.registry):
        text = generate_latest(registry).decode()
        for name in family_names(text):
            series.setdefault(name, set())
        for family in registry.collect():
            for sample in family.samples:
                series.setdefault(sample.name, set()).update(sample.labels)
    return series
