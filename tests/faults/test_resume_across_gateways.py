"""Any gateway can resume any stream: from the middle, from the end, and past the replay
window, on a second gateway process."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.conftest import AUTH
from tests.support.processes import ProcessGroup
from tests.support.sse import SseMessage, iter_sse, job_events, parse_sse

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too

TEXT = " ".join(f"part{i}" for i in range(24))


async def read_until(response: aiohttp.ClientResponse, seq: int) -> list[SseMessage]:
    seen = []
    async for message in iter_sse(response):
        if message.id is not None:
            seen.append(message)
            if int(message.id) >= seq:
                break
    return seen


async def test_a_second_gateway_resumes_the_middle_the_end_and_past_the_window(
    processes: ProcessGroup,
) -> None:
    first = await processes.gateway("gateway-1", REPLAY_TTL_S="2")
    second = await processes.gateway("gateway-2", REPLAY_TTL_S="2")
    await processes.worker(ECHO_TOKEN_DELAY_MS="60", REPLAY_TTL_S="2")
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{first.url}/api/v1/chat/stream", json={"text": TEXT, "pipeline": "echo"}, headers=AUTH
        )
        job_id = response.headers["X-Job-Id"]
        before = await read_until(response, 10)
        response.close()

        middle = await http.get(
            f"{second.url}/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": "10"}
        )
        after = [m for m in parse_sse(await middle.read()) if m.id is not None]
        seqs = [int(m.id or 0) for m in before + after]
        assert seqs == list(range(1, len(seqs) + 1))
        assert after[-1].type == "end" and after[-1].json["content"] == TEXT

        last = seqs[-1]
        end_only = await http.get(
            f"{second.url}/api/v1/streams/{job_id}",
            headers={**AUTH, "Last-Event-ID": str(last - 1)},
        )
        assert [e["type"] for e in job_events(parse_sse(await end_only.read()))] == ["end"]

        await asyncio.sleep(2.5)  # past REPLAY_TTL_S after the end
        late = await http.get(
            f"{second.url}/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": "3"}
        )
        assert late.status == 200
        kinds = [m.type for m in parse_sse(await late.read()) if m.data]
        assert kinds == ["reset", "snapshot", "end"]
