"""A worker killed mid-job: RabbitMQ redelivers the job and another worker takes it over on the
same stream, with `reset` and a fresh answer and seq still rising."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from tests.conftest import AUTH
from tests.support.processes import ProcessGroup
from tests.support.sse import iter_sse

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too


async def test_sigkill_mid_stream_hands_the_job_to_another_worker(processes: ProcessGroup) -> None:
    gateway = await processes.gateway()
    doomed = await processes.worker("doomed", ECHO_TOKEN_DELAY_MS="50")
    text = " ".join(f"word{i}" for i in range(40))
    async with aiohttp.ClientSession() as http:
        session = await (
            await http.post(f"{gateway.url}/api/v1/sessions", json={}, headers=AUTH)
        ).json()
        response = await http.post(
            f"{gateway.url}/api/v1/sessions/{session['id']}/messages/stream",
            json={"content": text, "pipeline": "echo"},
            headers=AUTH,
        )
        seen = []
        taken_over = False
        async for message in iter_sse(response):
            if message.id is None:
                continue
            seen.append(message)
            if message.type == "token" and not taken_over and len(seen) > 12:
                doomed.signal(signal.SIGKILL)
                await processes.worker("successor", ECHO_TOKEN_DELAY_MS="5")
                taken_over = True
            if message.type in ("end", "error"):
                break
        seqs = [int(m.id or 0) for m in seen]
        assert seqs == list(range(1, len(seqs) + 1))
        types = [m.type for m in seen]
        assert types.count("start") == 1 and types.count("end") == 1 and types[-1] == "end"
        assert "reset" in types
        after_reset = seen[types.index("reset") :]
        tokens = "".join(m.json["content"] for m in after_reset if m.type == "token")
        assert tokens == text == seen[-1].json["content"]
        stored = await (
            await http.get(f"{gateway.url}/api/v1/sessions/{session['id']}/messages", headers=AUTH)
        ).json()
        assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
        assert stored["messages"][1]["status"] == "complete"
        assert stored["messages"][1]["content"] == text
    successor = processes.started[-1]
    finished = await successor.wait_events("job.finished", 1)
    assert finished and finished[0]["redelivered"] is True
    await asyncio.sleep(0)
