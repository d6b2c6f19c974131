"""Redis over TLS with a password, on real servers that speak TLS alone: a ``rediss://``
REDIS_URL (with a client certificate: the server asks for one), and Sentinel with
``REDIS_TLS=true``, where the sentinels and the servers they name all speak TLS. A chat runs
through a gateway process and a worker process, so every Redis connection they make (the
command pool, the gateway's fanout and the worker's cancel listener, which make their own
from the pool's settings) has to be TLS: the servers have no plain port. A wrong password or
a certificate chatstream cannot verify makes ``/readyz`` answer 503 at once, and the log says
why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from launcher.local_redis import (
    SENTINEL_SERVICE,
    LocalRedisCluster,
    LocalSentinelGroup,
    RedisProcess,
    ServerTls,
)
from shared.settings import ConnectionSettings, RedisTlsSettings, SentinelSettings
from tests.process.test_stack import stream_text
from tests.support.processes import ProcessGroup, readiness
from tests.support.tls import make_certificates

PASSWORD = "tls-test-password"
TEXT = "a chat over TLS"


def client_tls(tls: ServerTls, *, with_certificate: bool = True) -> RedisTlsSettings:
    """chatstream's settings for servers with ``tls``: their CA, and the certificate they
    accept from clients."""
    if not with_certificate:
        return RedisTlsSettings(ca_file=str(tls.ca_file))
    return RedisTlsSettings(str(tls.ca_file), str(tls.cert_file), str(tls.key_file))


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """One TLS-only server that asks for a password and for a client certificate."""
    tls = make_certificates(tmp_path / "certs", auth_clients=True)
    server = RedisProcess(tmp_path / "redis", tls=tls, password=PASSWORD)
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
async def tls_sentinels(tmp_path: Path) -> AsyncIterator[LocalSentinelGroup]:
    tls = make_certificates(tmp_path / "certs")
    group = LocalSentinelGroup(tmp_path / "sentinel", tls=tls, password=PASSWORD)
    try:
        await asyncio.to_thread(group.start)
        yield group
    finally:
        group.stop()


def on_server(connections: ConnectionSettings, server: RedisProcess) -> ConnectionSettings:
    assert server.tls is not None
    return replace(
        connections,
        redis_url=f"rediss://{server.address}/0",
        redis_password=PASSWORD,
        redis_tls=client_tls(server.tls),
    )


async def chat_completes(processes: ProcessGroup) -> None:
    gateway = await processes.gateway()
    await processes.worker()
    async with aiohttp.ClientSession() as http:
        events = await stream_text(http, gateway.url, TEXT)
    assert events[-1]["type"] == "end" and events[-1]["content"] == TEXT


# The servers come first among the arguments, so that they stop after the processes.
async def test_a_chat_streams_over_tls_with_a_password_and_a_client_certificate(
    tls_redis: RedisProcess, processes: ProcessGroup
) -> None:
    processes.connections = on_server(processes.connections, tls_redis)
    await chat_completes(processes)
    with tls_redis.client() as client:
        assert client.keys(f"{processes.connections.namespace}*"), "the chat left no key"


async def test_a_chat_streams_through_sentinels_over_tls(
    tls_sentinels: LocalSentinelGroup, processes: ProcessGroup
) -> None:
    assert tls_sentinels.tls is not None
    processes.connections = replace(
        processes.connections,
        redis_url=None,
        sentinel=SentinelSettings(tls_sentinels.addresses, SENTINEL_SERVICE),
        redis_password=PASSWORD,
        redis_tls=client_tls(tls_sentinels.tls, with_certificate=False),
    )
    await chat_completes(processes)
    assert tls_sentinels.primary is not None
    with tls_sentinels.primary.client() as client:
        assert client.keys(f"{processes.connections.namespace}*"), "the chat left no key"


@pytest.fixture
async def tls_cluster(tmp_path: Path) -> AsyncIterator[LocalRedisCluster]:
    tls = make_certificates(tmp_path / "certs", auth_clients=True)
    cluster = LocalRedisCluster(tmp_path / "cluster", tls=tls, password=PASSWORD)
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        cluster.stop()


async def test_a_chat_streams_on_a_cluster_over_tls_with_a_password(
    tls_cluster: LocalRedisCluster, processes: ProcessGroup
) -> None:
    assert tls_cluster.tls is not None
    processes.connections = replace(
        processes.connections,
        redis_url=None,
        cluster_nodes=tls_cluster.addresses[:1],
        redis_password=PASSWORD,
        redis_tls=client_tls(tls_cluster.tls),
    )
    await chat_completes(processes)
    found = []
    for server in tls_cluster.servers:
        with server.client() as client:
            found += client.keys(f"{processes.connections.namespace}*")
    assert found, "the chat left no key"


@pytest.mark.parametrize(
    ("mistake", "reason"),
    [
        ({"redis_password": "not-the-password"}, "invalid username-password pair"),
        # No CA file: the system's CAs never signed the test CA.
        ({"redis_tls": RedisTlsSettings()}, "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["wrong password", "unverifiable certificate"],
)
async def test_a_server_chatstream_cannot_log_in_to_is_reported_not_waited_for(
    tls_redis: RedisProcess,
    processes: ProcessGroup,
    mistake: dict[str, object],
    reason: str,
) -> None:
    processes.connections = replace(on_server(processes.connections, tls_redis), **mistake)
    gateway = await processes.serving_gateway()
    status, body = await readiness(gateway)
    assert status == 503
    assert body["error"]["details"]["checks"] == {"redis": False, "queue": True}
    errors = await gateway.wait_events("fanout.listener_error", 1)
    assert errors and reason in errors[0]["error"], errors
