"""Traces as production exports them: a gateway process and a worker process, tracing turned
on by the standard OTEL_* variables alone, send OTLP/HTTP to a local receiver. One chat is one
trace across the two processes and RabbitMQ, and their log lines name its spans."""

from __future__ import annotations

import aiohttp

from tests.conftest import AUTH
from tests.support.otlp_receiver import ReceivedSpan, otlp_receiver, tracing_env
from tests.support.processes import ProcessGroup
from tests.support.sse import job_events, parse_sse

TEXT = "follow one slow chat from its log line to its trace"


async def chat(url: str) -> str:
    """One chat, read to its end; its job's id."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/api/v1/chat/stream", json={"text": TEXT, "pipeline": "echo"}, headers=AUTH
        ) as response,
    ):
        assert response.status == 200
        assert job_events(parse_sse(await response.read()))[-1]["type"] == "end"
        return response.headers["X-Job-Id"]


def only(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    [span] = [s for s in spans if s.name == name]
    return span


async def test_a_chat_across_processes_is_one_trace_and_its_log_lines_name_it(
    processes: ProcessGroup,
) -> None:
    names = processes.connections.names
    async with otlp_receiver() as receiver:
        env = tracing_env(receiver)
        gateway = await processes.gateway(**env)
        worker = await processes.worker(**env)
        job_id = await chat(gateway.url)
        [root] = await receiver.wait_for(
            lambda s: (
                s.kind == "SPAN_KIND_SERVER" and s.attributes.get("chatstream.job.id") == job_id
            ),
            what="request span",
        )
        await receiver.wait_for(
            lambda s: s.trace_id == root.trace_id and s.name == f"process {names.jobs_queue}",
            what="process span",
        )
        spans = receiver.in_trace(root.trace_id)

    assert root.service == "chatstream-gateway" and root.parent_span_id == ""
    assert root.attributes["http.response.status_code"] == 200
    publish = only(spans, f"publish {names.jobs_exchange}")
    assert publish.kind == "SPAN_KIND_PRODUCER" and publish.parent_span_id == root.span_id
    process = only(spans, f"process {names.jobs_queue}")
    assert process.service == "chatstream-worker" and process.kind == "SPAN_KIND_CONSUMER"
    assert process.parent_span_id == publish.span_id
    assert process.attributes["chatstream.worker.id"] == "worker"
    assert process.attributes["chatstream.job.queue_wait_ms"] >= 0
    assert process.attributes["chatstream.job.tokens"] == len(TEXT.split())
    assert only(spans, "queue wait").parent_span_id == publish.span_id
    generation = only(spans, "generation")
    assert generation.parent_span_id == process.span_id
    assert generation.attributes["chatstream.job.ttft_ms"] >= 0
    assert generation.attributes["gen_ai.usage.output_tokens"] == len(TEXT.split())
    assert len([e for e in process.event_names() if e.startswith("progress ")]) == 8
    assert root.event_names() == ["first event relayed", "first token relayed", "stream end"]

    # Log lines of the request and of the job name the trace, and the span they were in.
    [request_line] = [
        line
        for line in await gateway.wait_events("http.request", 1)
        if line["path"] == "/api/v1/chat/stream"
    ]
    assert (request_line["trace_id"], request_line["span_id"]) == (root.trace_id, root.span_id)
    [closed] = await gateway.wait_events("stream.closed", 1)
    assert closed["trace_id"] == root.trace_id
    [finished] = await worker.wait_events("job.finished", 1)
    assert (finished["trace_id"], finished["span_id"]) == (root.trace_id, process.span_id)
    assert finished["job_id"] == job_id and finished["request_id"] == request_line["request_id"]
    # A line outside any request or job names no trace.
    [started] = worker.events("worker.started")
    assert "trace_id" not in started


# Whatever the environment running the tests sets.
NO_TRACING = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
    "OTEL_TRACES_EXPORTER": "",
}


async def test_without_otel_settings_no_line_names_a_trace(processes: ProcessGroup) -> None:
    gateway = await processes.gateway(**NO_TRACING)
    worker = await processes.worker(**NO_TRACING)
    await chat(gateway.url)
    await worker.wait_events("job.finished", 1)
    await gateway.wait_events("http.request", 1)
    lines = gateway.log_lines() + worker.log_lines()
    assert any(line.get("event") == "job.finished" for line in lines)
    assert not [line for line in lines if "trace_id" in line or "span_id" in line]
