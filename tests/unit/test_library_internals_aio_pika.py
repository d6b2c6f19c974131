"""What the aio-pika section of shared/library_internals.py relies on, pinned on the installed
aio-pika: a failed connection attempt passes through ``_on_connection_close``, and each attempt
connects to ``Connection.url`` as it is then. If an upgrade changes either, these fail before a
cluster's failover quietly stops moving to another node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from launcher.ports import free_port
from shared.library_internals import NodeRotatingConnection
from tests.conftest import AMQP_URL

# Attempts in a row the rotation test watches: every node once, then the first again.
ROUNDS = 4


class DoorSlam:
    """A TCP port that accepts and at once closes: a connection attempt there fails after
    reaching it, and the server notes which node was tried."""

    def __init__(self, node: int, tried: asyncio.Queue[int]) -> None:
        self.node = node
        self.tried = tried

    async def serve(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tried.put_nowait(self.node)
        writer.close()


@pytest.fixture
async def slamming_nodes() -> AsyncIterator[tuple[list[str], asyncio.Queue[int]]]:
    tried: asyncio.Queue[int] = asyncio.Queue()
    servers = [
        await asyncio.start_server(DoorSlam(node, tried).serve, "127.0.0.1", 0) for node in range(3)
    ]
    urls = [f"amqp://guest:guest@127.0.0.1:{s.sockets[0].getsockname()[1]}/" for s in servers]
    try:
        yield urls, tried
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


async def test_each_failed_attempt_moves_on_to_the_next_node(
    slamming_nodes: tuple[list[str], asyncio.Queue[int]],
) -> None:
    urls, tried = slamming_nodes
    connection = NodeRotatingConnection(urls, reconnect_interval=0.01, fail_fast=False)
    connecting = asyncio.create_task(connection.connect(timeout=1))
    try:
        # A bound on a hang, not on speed: the attempts come 10 ms apart.
        async with asyncio.timeout(30):
            order = [await tried.get() for _ in range(ROUNDS)]
    finally:
        connecting.cancel()
        await connection.close()
        await asyncio.gather(connecting, return_exceptions=True)
    assert order == [0, 1, 2, 0]


@pytest.mark.real
async def test_it_connects_to_the_node_that_answers_past_one_that_does_not() -> None:
    dead = str(URL(AMQP_URL).with_port(free_port()))
    connection = NodeRotatingConnection([dead, AMQP_URL], reconnect_interval=0.01, fail_fast=False)
    try:
        async with asyncio.timeout(30):
            await connection.connect(timeout=1)
        assert connection.url.port == URL(AMQP_URL).port
        channel = await connection.channel()
        await channel.close()
    finally:
        await connection.close()
