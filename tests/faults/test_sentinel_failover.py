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
from tests.support.followed_streams import (
    assert_outage_survived,
    read_numbered,
    start_chat,
)
from tests.support.processes import chat_processes
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
            opened = [await start_chat(http, gateway.url, TEXT) for _ in range(STREAMS)]
            firsts = [await read_numbered(response, until_seq=8) for _, response in opened]
            sentinel_group.primary.kill()
            await assert_outage_survived(http, gateway.url, opened, firsts, TEXT)
    finally:
        processes.stop_all()
