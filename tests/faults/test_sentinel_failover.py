"""Redis behind Sentinel: the primary is killed mid-stream and the sentinels promote its
replica. Gateways and workers find the new primary by themselves. Each open stream completes
with every seq once and in order (or with a ``reset`` and a fresh copy), resuming with
``Last-Event-ID`` where the gateway said the event store was unavailable; none hangs. New
requests meanwhile get 503 with Retry-After, or succeed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from launcher.local_redis import SENTINEL_SERVICE, LocalSentinelGroup
from shared.settings import ConnectionSettings, SentinelSettings
from tests.conftest import AUTH
from tests.support.processes import ProcessGroup
from tests.support.sse import SseMessage, iter_sse

TEXT = " ".join(f"word{i}" for i in range(40))
STREAMS = 3
# Resumes a stream may need while the primary changes hands.
MAX_RESUMES = 50


@pytest.fixture
async def sentinel_group(tmp_path: Path) -> AsyncIterator[LocalSentinelGroup]:
    group = LocalSentinelGroup(tmp_path / "redis")
    try:
        await asyncio.to_thread(group.start)
        yield group
    finally:
        group.stop()


async def test_streams_complete_across_a_sentinel_failover(
    real_connections: ConnectionSettings, sentinel_group: LocalSentinelGroup, tmp_path: Path
) -> None:
    assert sentinel_group.primary is not None
    connections = replace(
        real_connections,
        redis_url=None,
        sentinel=SentinelSettings(sentinel_group.addresses, SENTINEL_SERVICE),
    )
    processes = ProcessGroup(
        connections,
        tmp_path,
        env_extra={
            "AUTH_API_KEYS": "test-key-alice=alice",
            "MAX_STREAMS_PER_USER": "10000",
            "RATE_LIMIT_PER_MINUTE": "1000000",
        },
    )
    try:
        gateway = await processes.gateway(CONNECT_TIMEOUT_S="0.5")
        await processes.worker(ECHO_TOKEN_DELAY_MS="60")
        async with aiohttp.ClientSession() as http:
            opened = [await _start(http, gateway.url) for _ in range(STREAMS)]
            firsts = [await _read(response, until_seq=8) for _, response in opened]
            sentinel_group.primary.kill()

            during = await _post(http, gateway.url)
            assert during.status in (200, 503), await during.text()
            if during.status == 503:
                assert during.headers.get("Retry-After")
            during.close()

            for (job_id, response), first in zip(opened, firsts, strict=True):
                seen = first + await _follow(http, gateway.url, job_id, response, first)
                _assert_whole(seen)

            # Service is back without a restart: a new chat streams to its end.
            for _ in range(200):
                after = await _post(http, gateway.url)
                if after.status == 200:
                    break
                after.close()
                await asyncio.sleep(0.1)
            assert after.status == 200
            assert [m.type async for m in iter_sse(after) if m.id][-1] == "end"
    finally:
        processes.stop_all()


async def _post(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    return await http.post(
        f"{url}/api/v1/chat/stream",
        json={"text": TEXT, "pipeline": "echo"},
        headers=AUTH,
        timeout=aiohttp.ClientTimeout(total=10),
    )


async def _start(http: aiohttp.ClientSession, url: str) -> tuple[str, aiohttp.ClientResponse]:
    response = await _post(http, url)
    assert response.status == 200, await response.text()
    return response.headers["X-Job-Id"], response


async def _read(response: aiohttp.ClientResponse, until_seq: int | None = None) -> list[SseMessage]:
    """The numbered events and the final error of one connection."""
    seen: list[SseMessage] = []
    async for message in iter_sse(response):
        if message.type == "error":
            seen.append(message)
            break
        if message.id is None:
            continue
        seen.append(message)
        if message.type == "end" or (until_seq is not None and int(message.id) >= until_seq):
            break
    return seen


async def _follow(
    http: aiohttp.ClientSession,
    url: str,
    job_id: str,
    response: aiohttp.ClientResponse,
    seen: list[SseMessage],
) -> list[SseMessage]:
    """Read the stream to its end, resuming as a client would after an ``unavailable`` error,
    a dropped connection or a 503."""
    rest = await _read(response)
    for _ in range(MAX_RESUMES):
        if rest and rest[-1].type == "end":
            return rest
        if rest and rest[-1].type == "error":
            assert rest[-1].json["code"] == "unavailable", rest[-1].json
            rest = rest[:-1]
        numbered = seen + rest
        last = next((m.id for m in reversed(numbered) if m.id is not None), "0")
        await asyncio.sleep(0.2)
        resumed = await http.get(
            f"{url}/api/v1/streams/{job_id}",
            headers={**AUTH, "Last-Event-ID": str(last)},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        if resumed.status == 503:
            resumed.close()
            continue
        assert resumed.status == 200, await resumed.text()
        rest += await _read(resumed)
    raise AssertionError(f"stream {job_id} did not end after {MAX_RESUMES} resumes")


def _assert_whole(seen: list[SseMessage]) -> None:
    """Every seq once and in order, or a ``reset`` after which a fresh copy ends the stream."""
    types = [m.type for m in seen]
    if "reset" in types:
        assert types[-1] == "end", types
        return
    seqs = [int(m.id or 0) for m in seen]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert seen[-1].type == "end" and seen[-1].json["content"] == TEXT
