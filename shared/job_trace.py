"""A job's spans on either side of the queue, after OpenTelemetry's messaging semantic
conventions: the gateway's ``publish`` span (a producer span, ended once the broker confirms),
and the worker's ``process`` span (a consumer span, the parent of the job's own spans), both in
the trace of the request that made the job.

The trace context crosses the broker in the message's headers: the W3C ``traceparent`` (and
``tracestate``), and the publish time, from which the worker measures the job's wait in the
queue. A job redelivered after its worker died carries the same headers, so the second
worker's spans join the same trace."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from shared import tracing
from shared.job import Job
from shared.names import Names

# The publish time, in nanoseconds since the epoch, in a job message's headers.
PUBLISHED_AT_HEADER = "chatstream-published-at-ns"

MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_ROUTING_KEY = "messaging.rabbitmq.destination.routing_key"
MESSAGING_MESSAGE_ID = "messaging.message.id"
JOB_ID = "chatstream.job.id"
SESSION_ID = "chatstream.session.id"
PIPELINE = "chatstream.pipeline"
WORKER_ID = "chatstream.worker.id"
REDELIVERED = "chatstream.job.redelivered"
QUEUE_WAIT_MS = "chatstream.job.queue_wait_ms"
TTFT_MS = "chatstream.job.ttft_ms"
TOKENS = "chatstream.job.tokens"
OUTCOME = "chatstream.job.outcome"
DURATION_MS = "chatstream.job.duration_ms"


@contextlib.contextmanager
def publishing(
    job: Job, system: str, destination: str, routing_key: str | None = None
) -> Iterator[dict[str, Any] | None]:
    """Around a job's publish to ``destination`` (an exchange, with ``routing_key``): its
    producer span, current inside, and the headers that carry its context to the worker;
    None (no headers, no span) while tracing is off."""
    if not tracing.enabled():
        yield None
        return
    attributes: dict[str, AttributeValue] = {
        MESSAGING_SYSTEM: system,
        MESSAGING_OPERATION_TYPE: "send",
        MESSAGING_OPERATION_NAME: "publish",
        MESSAGING_DESTINATION_NAME: destination,
        MESSAGING_MESSAGE_ID: job.job_id,
        JOB_ID: job.job_id,
        PIPELINE: job.pipeline,
    }
    if routing_key is not None:
        attributes[MESSAGING_ROUTING_KEY] = routing_key
    with tracing.span(f"publish {destination}", attributes, kind=SpanKind.PRODUCER):
        headers: dict[str, Any] = {PUBLISHED_AT_HEADER: tracing.now_ns()}
        tracing.inject(headers)
        yield headers


@contextlib.contextmanager
def processing(
    headers: Mapping[str, Any],
    job: Job,
    names: Names,
    *,
    system: str,
    redelivered: bool,
    worker_id: str,
) -> Iterator[Span | None]:
    """Around a job's run in a worker: its consumer span, current inside, a child of the
    publish span that ``headers`` name; before it, the job's wait in the queue as a span of its
    own, from the publish to this delivery. Nothing while tracing is off."""
    if not tracing.enabled():
        yield None
        return
    delivered_ns = tracing.now_ns()
    parent = tracing.extract(headers)
    attributes: dict[str, AttributeValue] = {
        MESSAGING_SYSTEM: system,
        MESSAGING_OPERATION_TYPE: "process",
        MESSAGING_OPERATION_NAME: "process",
        MESSAGING_DESTINATION_NAME: names.jobs_queue,
        MESSAGING_MESSAGE_ID: job.job_id,
        JOB_ID: job.job_id,
        SESSION_ID: job.session_id,
        PIPELINE: job.pipeline,
        WORKER_ID: worker_id,
        REDELIVERED: redelivered,
    }
    published_ns = _published_at_ns(headers)
    if published_ns is not None:
        # Clocks of two hosts may disagree by a little: a wait is never negative.
        published_ns = min(published_ns, delivered_ns)
        attributes[QUEUE_WAIT_MS] = (delivered_ns - published_ns) // 1_000_000
        waited = tracing.start_span(
            "queue wait",
            parent=parent,
            attributes={
                MESSAGING_DESTINATION_NAME: names.jobs_queue,
                JOB_ID: job.job_id,
                WORKER_ID: worker_id,
                REDELIVERED: redelivered,
            },
            start_time_ns=published_ns,
        )
        waited.end(end_time=delivered_ns)
    process = tracing.start_span(
        f"process {names.jobs_queue}",
        kind=SpanKind.CONSUMER,
        parent=parent,
        attributes=attributes,
        start_time_ns=delivered_ns,
    )
    with tracing.activated(process):
        yield process


def _published_at_ns(headers: Mapping[str, Any]) -> int | None:
    raw = headers.get(PUBLISHED_AT_HEADER)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def settling(operation: str, names: Names, system: str) -> AbstractContextManager[Span | None]:
    """Around a delivery's ack, reject or requeue: a ``settle`` span."""
    return tracing.span(
        f"{operation} {names.jobs_queue}",
        {
            MESSAGING_SYSTEM: system,
            MESSAGING_OPERATION_TYPE: "settle",
            MESSAGING_OPERATION_NAME: operation,
            MESSAGING_DESTINATION_NAME: names.jobs_queue,
        },
    )


def record_outcome(
    span: Span, *, outcome: str, ttft_ms: int | None, tokens: int, duration_ms: int
) -> None:
    """The job's summary, as on its ``job.finished`` line."""
    span.set_attribute(OUTCOME, outcome)
    span.set_attribute(TOKENS, tokens)
    span.set_attribute(DURATION_MS, duration_ms)
    if ttft_ms is not None:
        span.set_attribute(TTFT_MS, ttft_ms)


def record_progress(
    span: Span, step: str, message: str, details: str, metadata: Mapping[str, Any] | None
) -> None:
    """A progress step as an event of the job's span, with its metadata (scalars as they are,
    lists and maps as JSON, since span attributes hold neither)."""
    attributes: dict[str, AttributeValue] = {"step": step, "message": message}
    if details:
        attributes["details"] = details
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            attributes[f"metadata.{key}"] = value
        else:
            attributes[f"metadata.{key}"] = json.dumps(value, default=str)
    span.add_event(f"progress {step}", attributes)
