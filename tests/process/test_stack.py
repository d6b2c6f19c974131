"""The stack as `make stack` runs it: a gateway process and worker processes on the real servers."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.conftest import AUTH
from tests.support.processes import ProcessGroup
from tests.support.sse import job_events, parse_sse


async def stream_text(http: aiohttp.ClientSession, url: str, text: str) -> list[dict[str, object]]:
    async with http.post(
        f"{url}/api/v1/chat/stream", json={"text": text, "pipeline": "echo"}, headers=AUTH
    ) as response:
        assert response.status == 200
        return job_events(parse_sse(await response.read()))


async def test_fifty_concurrent_streams_complete_across_two_worker_processes(
    processes: ProcessGroup,
) -> None:
    gateway = await processes.gateway()
    workers = [
        await processes.worker(f"worker-{i}", ECHO_TOKEN_DELAY_MS="20", WORKER_CONCURRENCY="8")
        for i in range(2)
    ]
    texts = [f"concurrent stream {i} of fifty" for i in range(50)]
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(*(stream_text(http, gateway.url, t) for t in texts))
    for text, events in zip(texts, results, strict=True):
        assert events[0]["type"] == "start"
        assert events[-1]["type"] == "end" and events[-1]["content"] == text
    for worker in workers:
        finished = await worker.wait_events("job.finished", 1)
        assert finished, f"{worker.name} ran no job"
        assert {line["worker_id"] for line in finished} == {worker.name}
    # Each worker logs a job's summary just after its final event, so the lines may trail.
    finished_ids: set[str] = set()
    for _ in range(200):
        finished_ids = {line["job_id"] for w in workers for line in w.events("job.finished")}
        if len(finished_ids) >= 50:
            break
        await asyncio.sleep(0.05)
    assert len(finished_ids) == 50
    closed = await gateway.wait_events("stream.closed", 50)
    assert len(closed) == 50 and {line["close_reason"] for line in closed} == {"end"}
    assert all(line["request_id"] and line["user_id"] == "alice" for line in closed)


async def test_sigterm_lets_a_worker_finish_its_running_job_then_exit(
    processes: ProcessGroup,
) -> None:
    gateway = await processes.gateway()
    worker = await processes.worker(ECHO_TOKEN_DELAY_MS="50", WORKER_SHUTDOWN_GRACE_S="20")
    text = " ".join(f"word{i}" for i in range(30))
    async with aiohttp.ClientSession() as http:
        stream = asyncio.create_task(stream_text(http, gateway.url, text))
        for _ in range(200):
            if worker.events("job.started"):
                break
            await asyncio.sleep(0.05)
        assert not stream.done()
        worker.signal(signal.SIGTERM)
        events = await stream
    assert events[-1]["type"] == "end" and events[-1]["content"] == text
    assert await worker.wait_exit(30) == 0
    assert worker.events("worker.stopped")
