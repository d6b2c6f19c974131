"""Redis killed and restarted, RabbitMQ cut and restored, while a stream is open. Services
recover by themselves; the stream completes with every seq once (or ends with a clear error);
new requests meanwhile get 503 with Retry-After; afterwards service returns, no restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, WorkerFactory
from tests.support.processes import ProcessGroup
from tests.support.redis_server import PrivateRedis
from tests.support.sse import SseMessage, iter_sse
from tests.support.tcp_proxy import TcpProxy

TEXT = " ".join(f"word{i}" for i in range(40))
LIMITS = {"MAX_STREAMS_PER_USER": "10000", "RATE_LIMIT_PER_MINUTE": "1000000"}


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    yield proxy
    await proxy.close()


def group(connections: ConnectionSettings, tmp_path: Path, **changes: Any) -> ProcessGroup:
    return ProcessGroup(
        replace(connections, **changes),
        tmp_path,
        env_extra={"AUTH_API_KEYS": "test-key-alice=alice", **LIMITS},
    )


async def post_during_outage(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    return await http.post(
        f"{url}/api/v1/chat/stream",
        json={"text": "anyone there", "pipeline": "echo"},
        headers=AUTH,
        timeout=aiohttp.ClientTimeout(total=5),
    )


def assert_whole_or_clear_error(seen: list[SseMessage]) -> None:
    seqs = [int(m.id or 0) for m in seen]
    assert seqs == sorted(set(seqs)), "a seq came twice or out of order"
    assert seqs == list(range(1, len(seqs) + 1)), "a seq is missing"
    last = seen[-1]
    assert last.type in ("end", "error")
    if last.type == "end":
        assert last.json["content"] == TEXT


async def stream_through_an_outage(
    gateway_url: str,
    break_it: Callable[[], Awaitable[None]],
    mend_it: Callable[[], Awaitable[None]],
) -> None:
    """Stream an answer; after its twelfth event, break a server, check a new request gets 503,
    mend the server a second later; the stream must end whole (or with a clear error), and
    service must come back without a restart."""
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{gateway_url}/api/v1/chat/stream",
            json={"text": TEXT, "pipeline": "echo"},
            headers=AUTH,
        )
        seen: list[SseMessage] = []
        outage_status = None
        async for message in iter_sse(response):
            if message.id is None:
                continue
            seen.append(message)
            if message.type == "token" and outage_status is None and len(seen) > 12:
                await break_it()
                refused = await post_during_outage(http, gateway_url)
                outage_status = (refused.status, refused.headers.get("Retry-After"))
                await asyncio.sleep(1.0)
                await mend_it()
            if message.type in ("end", "error"):
                break
        assert outage_status is not None and outage_status[0] == 503 and outage_status[1]
        assert_whole_or_clear_error(seen)
        assert [m.type for m in seen].count("start") == 1
        for _ in range(100):  # the connections come back by themselves
            after = await post_during_outage(http, gateway_url)
            if after.status == 200:
                break
            await asyncio.sleep(0.1)
        assert after.status == 200
        assert [m.json["type"] async for m in iter_sse(after) if m.id][-1] == "end"


async def test_redis_killed_and_restarted_mid_stream(
    real_connections: ConnectionSettings, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    processes = group(real_connections, tmp_path, redis_url=private_redis.url)
    try:
        gateway = await processes.gateway(CONNECT_TIMEOUT_S="0.5")
        await processes.worker(ECHO_TOKEN_DELAY_MS="60")

        async def kill() -> None:
            private_redis.kill()

        await stream_through_an_outage(gateway.url, kill, private_redis.start)
    finally:
        processes.stop_all()


async def test_rabbitmq_cut_and_restored_mid_stream(
    real_connections: ConnectionSettings, amqp_proxy: TcpProxy, tmp_path: Path
) -> None:
    proxied = f"amqp://guest:guest@127.0.0.1:{amqp_proxy.port}/"
    processes = group(real_connections, tmp_path, amqp_url=proxied)
    try:
        gateway = await processes.gateway(CONNECT_TIMEOUT_S="0.5")
        worker = await processes.worker(ECHO_TOKEN_DELAY_MS="60")
        await stream_through_an_outage(gateway.url, amqp_proxy.cut, amqp_proxy.restore)
        # The job the cut interrupted went back to the queue for the link's loss, not for a
        # shutdown (the worker never stopped), and was taken over after it.
        [requeued] = worker.events("job.requeued")
        assert requeued["reason"] == "queue_link_lost"
        assert [line["redelivered"] for line in worker.events("job.started")][:2] == [False, True]
        # Each connection, the one made again too, names its process in RabbitMQ's listings.
        listed = await _rabbitmq_connection_names()
        assert f"chatstream worker {requeued['worker_id']}" in listed, listed
        assert any(name.startswith("chatstream gateway ") for name in listed), listed
    finally:
        processes.stop_all()


async def test_a_cancel_the_workers_listener_missed_stops_the_job_once_it_is_back(
    real_connections: ConnectionSettings,
    private_redis: PrivateRedis,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
) -> None:
    # A cancel broadcast while a worker's subscription is lost goes unheard; what is left of it
    # is the job's flag. The listener reads the running jobs' flags each time it is back.
    connections = replace(real_connections, redis_url=private_redis.url)
    gateway = await start_gateway(connections)
    await start_worker(connections, echo_token_delay_ms=50)
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": TEXT * 5, "pipeline": "echo"}, headers=AUTH
    )
    job_id = response.headers["X-Job-Id"]
    redis = Redis.from_url(private_redis.url)
    seen: list[SseMessage] = []
    try:
        async for message in iter_sse(response):
            if message.id is None:
                continue
            seen.append(message)
            if message.type == "token" and len(seen) == 12:
                # The flag alone, as if its broadcast went out while the listener was away.
                await redis.set(connections.names.job_cancel_flag(job_id), 1)
                await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            if message.type in ("end", "error"):
                break
    finally:
        await redis.aclose()
    assert [int(m.id or 0) for m in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].type == "end"
    assert seen[-1].json["finishReason"] == "cancelled"
    assert len(seen[-1].json["content"]) < len(TEXT * 5)


async def test_a_gateway_link_to_redis_that_goes_silent_is_replaced_and_the_stream_completes(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
) -> None:
    # Every open connection between the gateway and Redis goes silent without closing, as when
    # Redis's host vanishes behind a failover: the stream must not wait for events forever.
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    try:
        assert real_connections.redis_url is not None
        db = real_connections.redis_url.rsplit("/", 1)[-1]
        proxied = replace(real_connections, redis_url=f"redis://127.0.0.1:{proxy.port}/{db}")
        gateway = await start_gateway(proxied)
        await start_worker(real_connections, echo_token_delay_ms=50)
        response = await gateway.post(
            "/api/v1/chat/stream", json={"text": TEXT, "pipeline": "echo"}, headers=AUTH
        )
        seen: list[SseMessage] = []
        async with asyncio.timeout(60):
            async for message in iter_sse(response):
                if message.id is None:
                    continue
                seen.append(message)
                if len(seen) == 12:
                    proxy.freeze()
                if message.type in ("end", "error"):
                    break
        assert_whole_or_clear_error(seen)
        assert seen[-1].type == "end"
    finally:
        await proxy.close()


async def _rabbitmq_connection_names() -> list[str]:
    """The connection names RabbitMQ lists (``rabbitmqctl``, as an operator would see them)."""
    listing = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "list_connections",
        "client_properties",
        "--formatter",
        "json",
        "-q",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await listing.communicate()
    assert listing.returncode == 0
    names = []
    for connection in json.loads(out):
        for key, _type, value in connection["client_properties"]:
            if key == "connection_name":
                names.append(value)
    return names
