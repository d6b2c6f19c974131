"""Tracing, in one process through the real RabbitMQ and Redis, every span in the SDK's
in-memory exporter: a chat is one trace from the gateway's request span through the publish
and the queue to the worker's spans; a resume and a cancel link to it; with tracing off, no
span, no trace header, no trace id in a log line."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import events, tracing
from shared.job_trace import PUBLISHED_AT_HEADER
from shared.names import Names
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, WorkerFactory
from tests.support.chat import Client
from tests.support.sse import SseMessage, parse_sse

TEXT = "one trace from the request to the last event"


async def chat(client: Client, text: str = TEXT) -> tuple[str, list[SseMessage]]:
    """The job's id and its events as read."""
    response = await client.post(
        "/api/v1/chat/stream", json={"text": text, "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    messages = parse_sse(await response.read())
    return response.headers["X-Job-Id"], [m for m in messages if m.id is not None]


async def finished_spans(
    exporter: InMemorySpanExporter, name: str, count: int = 1
) -> list[ReadableSpan]:
    """The ended spans called ``name``, once there are ``count`` (the worker acks, and ends
    its span, just after the client has read the job's end)."""
    for _ in range(200):
        found = [s for s in exporter.get_finished_spans() if s.name == name]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    names = sorted({s.name for s in exporter.get_finished_spans()})
    raise AssertionError(f"{count} {name!r} spans never ended; ended: {names}")


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


@pytest.fixture
async def traced(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    span_exporter: InMemorySpanExporter,
) -> Client:
    """A gateway and a worker on the real servers, in this process, traced in memory."""
    client = await start_gateway(real_connections)
    await start_worker(real_connections)
    return client


async def test_a_chat_through_rabbitmq_is_one_trace_with_the_gateway_and_worker_spans(
    traced: Client, real_connections: ConnectionSettings, span_exporter: InMemorySpanExporter
) -> None:
    client = traced
    job_id, received = await chat(client)
    assert received[-1].type == "end"
    names = real_connections.names
    await finished_spans(span_exporter, f"process {names.jobs_queue}")
    await finished_spans(span_exporter, "POST /api/v1/chat/stream")
    spans = list(span_exporter.get_finished_spans())

    root = only(spans, "POST /api/v1/chat/stream")
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert root.attributes is not None
    assert root.attributes["http.request.method"] == "POST"
    assert root.attributes["http.route"] == "/api/v1/chat/stream"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["chatstream.job.id"] == job_id
    # Every span of the chat, on both sides of the broker, is in the root's trace.
    assert {trace_of(s) for s in spans} == {trace_of(root)}

    auth, store = only(spans, "auth"), only(spans, "turn store")
    publish = only(spans, f"publish {names.jobs_exchange}")
    assert parent_of(auth) == parent_of(store) == parent_of(publish) == span_id(root)
    assert publish.kind is SpanKind.PRODUCER
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "rabbitmq"
    assert publish.attributes["messaging.message.id"] == job_id

    assert_worker_spans(spans, publish, names, job_id)

    # The relay's moments are events of the request's span.
    relay = [e.name for e in root.events]
    assert relay == ["first event relayed", "first token relayed", "stream end"]
    end = root.events[-1]
    assert end.attributes is not None and end.attributes["close_reason"] == "end"


def assert_worker_spans(
    spans: list[ReadableSpan], publish: ReadableSpan, names: Names, job_id: str
) -> None:
    """The worker's spans hang from the publish, through the trace context in the message."""
    process = only(spans, f"process {names.jobs_queue}")
    waited = only(spans, "queue wait")
    assert process.kind is SpanKind.CONSUMER
    assert parent_of(process) == parent_of(waited) == span_id(publish)
    assert process.attributes is not None
    assert process.attributes["chatstream.job.id"] == job_id
    assert process.attributes["chatstream.job.redelivered"] is False
    queue_wait_ms = process.attributes["chatstream.job.queue_wait_ms"]
    assert isinstance(queue_wait_ms, int) and queue_wait_ms >= 0
    words = len(TEXT.split())
    assert process.attributes["chatstream.job.tokens"] == words
    assert process.attributes["chatstream.job.outcome"] == "stop"
    assert isinstance(process.attributes["chatstream.job.ttft_ms"], int)
    assert waited.start_time is not None and publish.start_time is not None
    assert waited.start_time >= publish.start_time

    generation, final, ack = (
        only(spans, "generation"),
        only(spans, "final write"),
        only(spans, f"ack {names.jobs_queue}"),
    )
    assert parent_of(generation) == parent_of(final) == parent_of(ack) == span_id(process)
    assert generation.attributes is not None
    assert generation.attributes["gen_ai.usage.output_tokens"] == words
    assert isinstance(generation.attributes["chatstream.job.ttft_ms"], int)
    assert ack.attributes is not None and ack.attributes["messaging.operation.type"] == "settle"

    # The eight progress steps are events of the job's span, with their metadata.
    steps = [e for e in process.events if e.name.startswith("progress ")]
    assert [e.attributes["step"] for e in steps if e.attributes] == list(events.PROGRESS_STEPS)
    planning = next(e for e in steps if e.name == "progress planning")
    assert planning.attributes is not None and planning.attributes["metadata.tokens"] == words
    assert "first token" in [e.name for e in process.events]


async def test_a_resumed_stream_links_to_the_chats_trace(
    traced: Client, span_exporter: InMemorySpanExporter
) -> None:
    client = traced
    job_id, received = await chat(client)
    origin = (await finished_spans(span_exporter, "POST /api/v1/chat/stream"))[0]
    after = int(received[2].id or 0)
    response = await client.get(
        f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": str(after)}
    )
    assert response.status == 200
    replayed = [m for m in parse_sse(await response.read()) if m.id is not None]
    assert int(replayed[0].id or 0) == after + 1 and replayed[-1].type == "end"

    resume = (await finished_spans(span_exporter, "GET /api/v1/streams/{job_id}"))[0]
    # A trace of its own, linked to the request that made the job.
    assert resume.parent is None and trace_of(resume) != trace_of(origin)
    assert [(link.context.trace_id, link.context.span_id) for link in resume.links] == [
        (trace_of(origin), span_id(origin))
    ]
    [resumed] = [e for e in resume.events if e.name == "stream resume"]
    assert resumed.attributes is not None and resumed.attributes["after_seq"] == after
    assert [e.name for e in resume.events][-1] == "stream end"


async def test_a_cancel_links_to_the_chats_trace(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    span_exporter: InMemorySpanExporter,
) -> None:
    """No worker runs: the job waits in the queue, and the cancel finds it there."""
    client = await start_gateway(real_connections)
    response = await client.post(
        "/api/v1/chat/stream", json={"text": TEXT, "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200
    job_id = response.headers["X-Job-Id"]
    publish = (
        await finished_spans(span_exporter, "publish " + real_connections.names.jobs_exchange)
    )[0]
    cancelled = await client.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)
    assert cancelled.status == 202
    response.close()
    cancel = (await finished_spans(span_exporter, "POST /api/v1/streams/{job_id}/cancel"))[0]
    assert cancel.parent is None and trace_of(cancel) != trace_of(publish)
    # The link names the request span that made the job: the publish span's parent.
    assert [(link.context.trace_id, link.context.span_id) for link in cancel.links] == [
        (trace_of(publish), parent_of(publish))
    ]
    assert "job cancel" in [e.name for e in cancel.events]


async def queued_job_headers(client: Client, connections: ConnectionSettings) -> dict[str, Any]:
    """Start a chat with no worker running, and read its job's message off the queue: the
    headers it carries."""
    response = await client.post(
        "/api/v1/chat/stream", json={"text": TEXT, "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200
    response.close()
    assert connections.amqp_url is not None
    connection = await aio_pika.connect(connections.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(connections.names.jobs_queue, ensure=False)
        for _ in range(100):
            message = await queue.get(fail=False, no_ack=True)
            if message is not None:
                return dict(message.headers)
            await asyncio.sleep(0.02)
    raise AssertionError("the job never reached the queue")


async def test_with_tracing_off_a_job_carries_no_trace_context(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    assert not tracing.enabled()
    client = await start_gateway(real_connections)
    headers = await queued_job_headers(client, real_connections)
    assert "traceparent" not in headers
    assert PUBLISHED_AT_HEADER not in headers


async def test_with_tracing_on_a_job_carries_its_trace_context(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    span_exporter: InMemorySpanExporter,
) -> None:
    client = await start_gateway(real_connections)
    headers = await queued_job_headers(client, real_connections)
    names = real_connections.names
    publish = (await finished_spans(span_exporter, f"publish {names.jobs_exchange}"))[0]
    # W3C: version, trace id, parent id (the publish span), flags (sampled, and more).
    version, trace_id, parent_id, flags = str(headers["traceparent"]).split("-")
    assert (version, trace_id, parent_id) == (
        "00",
        f"{trace_of(publish):032x}",
        f"{span_id(publish):016x}",
    )
    assert int(flags, 16) & 1
    assert isinstance(headers[PUBLISHED_AT_HEADER], int)


async def test_a_batchs_items_are_children_of_the_batchs_request_span(
    start_gateway: GatewayFactory, namespace: str, span_exporter: InMemorySpanExporter
) -> None:
    client = await start_gateway(ConnectionSettings(namespace=namespace))
    requests = [
        {"id": "one", "method": "POST", "path": "/api/v1/sessions", "body": {"title": "one"}},
        {"id": "list", "method": "GET", "path": "/api/v1/sessions"},
    ]
    response = await client.post("/api/v1/batch", json={"requests": requests}, headers=AUTH)
    assert response.status == 200
    batch = (await finished_spans(span_exporter, "POST /api/v1/batch"))[0]
    created = (await finished_spans(span_exporter, "POST /api/v1/sessions"))[0]
    listed = (await finished_spans(span_exporter, "GET /api/v1/sessions"))[0]
    assert batch.parent is None
    assert parent_of(created) == parent_of(listed) == span_id(batch)
    assert trace_of(created) == trace_of(listed) == trace_of(batch)


async def test_in_embedded_mode_a_chat_is_one_trace_across_the_in_process_queue(
    start_gateway: GatewayFactory, namespace: str, span_exporter: InMemorySpanExporter
) -> None:
    connections = ConnectionSettings(namespace=namespace)
    client = await start_gateway(connections)
    _, received = await chat(client)
    assert received[-1].type == "end"
    process = (await finished_spans(span_exporter, f"process {connections.names.jobs_queue}"))[0]
    publish = only(list(span_exporter.get_finished_spans()), "publish jobs")
    assert parent_of(process) == span_id(publish) and trace_of(process) == trace_of(publish)
    assert publish.attributes is not None and process.attributes is not None
    assert publish.attributes["messaging.system"] == "in-process"
    assert process.attributes["messaging.system"] == "in-process"
