"""A worker killed mid-job, traced: the job's message carries its trace context, so the worker
that takes the redelivered job over adds its spans to the same trace as the first one's."""

from __future__ import annotations

import signal

import aiohttp

from tests.conftest import AUTH
from tests.support.otlp_receiver import otlp_receiver, tracing_env
from tests.support.processes import ProcessGroup
from tests.support.sse import iter_sse


async def test_the_worker_that_takes_over_a_killed_workers_job_joins_its_trace(
    processes: ProcessGroup,
) -> None:
    names = processes.connections.names
    text = " ".join(f"word{i}" for i in range(40))
    async with otlp_receiver() as receiver:
        env = tracing_env(receiver)
        gateway = await processes.gateway(**env)
        doomed = await processes.worker("doomed", ECHO_TOKEN_DELAY_MS="50", **env)
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{gateway.url}/api/v1/chat/stream",
                json={"text": text, "pipeline": "echo"},
                headers=AUTH,
            )
            job_id = response.headers["X-Job-Id"]
            tokens, types = 0, []
            async for message in iter_sse(response):
                if message.id is None:
                    continue
                types.append(message.type)
                tokens += message.type == "token"
                if tokens == 10 and doomed.process.poll() is None:
                    # The doomed worker's queue wait span has been exported by now: it ended
                    # at the delivery, ten tokens (half a second) ago.
                    await receiver.wait_for(
                        lambda s: (
                            s.name == "queue wait"
                            and s.attributes.get("chatstream.worker.id") == "doomed"
                        ),
                        what="first worker's queue wait",
                    )
                    doomed.signal(signal.SIGKILL)
                    await processes.worker("successor", ECHO_TOKEN_DELAY_MS="5", **env)
                if message.type in ("end", "error"):
                    break
        assert "reset" in types and types[-1] == "end"
        [process] = await receiver.wait_for(
            lambda s: (
                s.name == f"process {names.jobs_queue}"
                and s.attributes.get("chatstream.job.id") == job_id
            ),
            what="successor's process span",
        )
        [root] = await receiver.wait_for(
            lambda s: (
                s.kind == "SPAN_KIND_SERVER" and s.attributes.get("chatstream.job.id") == job_id
            ),
            what="request span",
        )
        spans = receiver.in_trace(root.trace_id)

    [publish] = [s for s in spans if s.name == f"publish {names.jobs_exchange}"]
    assert publish.parent_span_id == root.span_id
    # The successor's run is in the chat's trace, under the one publish, marked redelivered.
    assert process.trace_id == root.trace_id and process.parent_span_id == publish.span_id
    assert process.attributes["chatstream.worker.id"] == "successor"
    assert process.attributes["chatstream.job.redelivered"] is True
    assert process.attributes["chatstream.job.outcome"] == "stop"
    # Both workers' waits for the job are in the trace: the first delivery's and the second's.
    waits = {
        s.attributes["chatstream.worker.id"]: s.attributes["chatstream.job.redelivered"]
        for s in spans
        if s.name == "queue wait"
    }
    assert waits == {"doomed": False, "successor": True}
    assert all(s.parent_span_id == publish.span_id for s in spans if s.name == "queue wait")
