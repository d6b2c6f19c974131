"""Redis behind Sentinel, in plain TCP and all in TLS with a password: the primary is killed
mid-stream and the sentinels promote its replica. Gateways and workers find the new primary by
themselves. Each open stream completes with every seq once and in order (or with a ``reset``
and a fresh copy), resuming with ``Last-Event-ID`` where the gateway said the event store was
unavailable; none hangs. New requests meanwhile get 503 with Retry-After, or succeed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from launcher.local_redis import SENTINEL_SERVICE, LocalSentinelGroup
from shared.settings import ConnectionSettings, RedisTlsSettings, SentinelSettings
from tests.conftest import AUTH
from tests.support.followed_streams import assert_whole, follow_to_end, read_numbered
from tests.support.processes import chat_processes
from tests.support.sse import iter_sse
from tests.support.tls import make_certificates

TEXT = " ".join(f"word{i}" for i in range(40))
STREAMS = 3
PASSWORD = "sentinel-test-password"


@pytest.fixture(params=["plain", "tls"])
async def sentinel_group(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LocalSentinelGroup]:
    """A primary, a replica and three sentinels; with ``tls``, every one of them speaks TLS
    alone and the data servers ask for a password."""
    if request.param == "tls":
        tls = make_certificates(tmp_path / "certs")
        group = LocalSentinelGroup(tmp_path / "redis", tls=tls, password=PASSWORD)
    else:
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
    if sentinel_group.tls is not None:
        connections = replace(
            connections,
            redis_password=PASSWORD,
            redis_tls=RedisTlsSettings(ca_file=str(sentinel_group.tls.ca_file)),
        )
    processes = chat_processes(connections, tmp_path)
    try:
        gateway = await processes.gateway(CONNECT_TIMEOUT_S="0.5")
        await processes.worker(ECHO_TOKEN_DELAY_MS="60")
        async with aiohttp.ClientSession() as http:
            opened = [await _start(http, gateway.url) for _ in range(STREAMS)]
            firsts = [await read_numbered(response, until_seq=8) for _, response in opened]
            sentinel_group.primary.kill()

            during = await _post(http, gateway.url)
            assert during.status in (200, 503), await during.text()
            if during.status == 503:
                assert during.headers.get("Retry-After")
            during.close()

            for (job_id, response), first in zip(opened, firsts, strict=True):
                seen = first + await follow_to_end(http, gateway.url, job_id, response, first)
                assert_whole(seen, TEXT)

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
