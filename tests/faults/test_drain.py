"""SIGTERM of a gateway with 100 open streams: it closes them over DRAIN_S, and every client
resumes on the other gateway with Last-Event-ID and completes, with every seq once."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.conftest import AUTH
from tests.support.processes import ProcessGroup
from tests.support.sse import SseMessage, iter_sse

STREAMS = 100


async def read_events(response: aiohttp.ClientResponse) -> list[SseMessage]:
    seen = []
    try:
        async for message in iter_sse(response):
            if message.id is not None:
                seen.append(message)
    except aiohttp.ClientPayloadError:
        pass  # the draining gateway closed the connection
    return seen


async def chat_across_a_drain(
    http: aiohttp.ClientSession, first: str, second: str, text: str, opened: asyncio.Event
) -> list[SseMessage]:
    response = await http.post(
        f"{first}/api/v1/chat/stream", json={"text": text, "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200
    job_id = response.headers["X-Job-Id"]
    opened.set()
    seen = await read_events(response)
    if seen and seen[-1].type == "end":
        return seen
    last = seen[-1].id if seen else "0"
    resumed = await http.get(
        f"{second}/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": str(last)}
    )
    assert resumed.status == 200
    return seen + await read_events(resumed)


async def test_sigterm_drains_100_streams_onto_the_other_gateway(processes: ProcessGroup) -> None:
    draining = await processes.gateway("gateway-a", DRAIN_S="2")
    other = await processes.gateway("gateway-b")
    await processes.worker(ECHO_TOKEN_DELAY_MS="100", WORKER_CONCURRENCY="100")
    texts = [f"stream {i} " + " ".join(f"w{j}" for j in range(30)) for i in range(STREAMS)]
    opened = [asyncio.Event() for _ in texts]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        chats = [
            asyncio.create_task(chat_across_a_drain(http, draining.url, other.url, text, flag))
            for text, flag in zip(texts, opened, strict=True)
        ]
        await asyncio.gather(*(flag.wait() for flag in opened))
        draining.signal(signal.SIGTERM)
        results = await asyncio.gather(*chats)
    for text, seen in zip(texts, results, strict=True):
        seqs = [int(m.id or 0) for m in seen]
        assert seqs == list(range(1, len(seqs) + 1))
        assert seen[-1].type == "end" and seen[-1].json["content"] == text
    assert await draining.wait_exit(15) == 0
    closed = draining.events("stream.closed")
    assert sum(1 for line in closed if line["close_reason"] == "drain") > 0
    assert await other.wait_events("stream.closed", 1)
