"""What shared/library_internals.py relies on still holds: a failure here means an upgrade
changed a library's internals, and the section of that module it names must be revisited.

redis-py, commands packed by hiredis: the asyncio connection still packs through
``pack_command`` (alone and in a pipeline), and hiredis packs the bytes redis-py's own asyncio
packer writes, for every kind of argument chatstream sends; bad arguments fail the same way.

redis-py, a cluster node's own connection and the slot map read again: see the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
import uvloop
from redis.asyncio import Connection, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import DataError
from redis.typing import EncodableT

from shared.library_internals import (
    HiredisPackingConnection,
    cluster_node_connection,
    is_dropped_connection,
    refresh_slot_map,
)
from shared.redis_client import tcp_connection_class

COMMANDS = [
    ("SET", "key", "value"),
    ("SET", "key", "é, non-ASCII text"),
    ("ZADD", "leases", 1733140000.125, "lease-id"),
    ("ZADD", "leases", float("inf"), "lease-id"),
    ("EXPIRE", "key", 30),
    ("EVAL", "return redis.call('GET', KEYS[1])", 1, "key"),
    ("EVALSHA", "a" * 40, 1, "key", b"\x81\xa1v\x01"),
    ("CONFIG GET", "maxmemory"),
    (b"PUBLISH", b"channel", b"\x81\xa1v\x01\x00\xff"),
    ("SET", "key", memoryview(b"bytes")),
]


def python_packed(*command: EncodableT) -> bytes:
    return b"".join(Connection().pack_command(*command))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: str(command[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(command: tuple[EncodableT, ...]) -> None:
    by_hiredis = b"".join(HiredisPackingConnection().pack_command(*command))
    assert by_hiredis == python_packed(*command)


@pytest.mark.parametrize("value", [None, True])
def test_an_argument_redis_cannot_take_is_a_data_error(value: object) -> None:
    with pytest.raises(DataError):
        HiredisPackingConnection().pack_command("SET", "key", value)  # type: ignore[arg-type]


def test_only_plain_tcp_urls_get_the_hiredis_connection() -> None:
    assert tcp_connection_class("redis://127.0.0.1:6379/0") == {
        "connection_class": HiredisPackingConnection
    }
    assert tcp_connection_class("rediss://redis.example:6380/0") == {}
    assert tcp_connection_class("unix:///run/redis.sock") == {}


class CountingConnection(HiredisPackingConnection):
    """Counts the commands the override packed."""

    packed: ClassVar[list[tuple[EncodableT, ...]]] = []

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        CountingConnection.packed.append(args)
        return super().pack_command(*args)


class OkSink:
    """A socket that answers +OK to every command and keeps the bytes it was sent: what the
    client writes, observed without a Redis."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while header := await reader.readline():
                self.received += header
                for _ in range(int(header[1:])):
                    length = await reader.readline()
                    self.received += length + await reader.readexactly(int(length[1:]) + 2)
                writer.write(b"+OK\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def sink() -> AsyncIterator[OkSink]:
    sink = OkSink()
    server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    async with server:
        yield sink


async def test_the_asyncio_connection_packs_through_pack_command(sink: OkSink) -> None:
    """Alone and in a pipeline, every command goes through the override; on the wire are the
    bytes redis-py's Python packer writes."""
    pool = ConnectionPool(
        host="127.0.0.1", port=sink.port, protocol=2, connection_class=CountingConnection
    )
    redis = Redis(connection_pool=pool)
    try:
        await redis.ping()  # connected, past the handshake: what follows is only ours
        sink.received.clear()
        CountingConnection.packed.clear()
        await redis.set("key", "value")
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set("key", "é")
            pipe.evalsha("a" * 40, 1, "key", b"\x00\xff")
            await pipe.execute()
    finally:
        await redis.aclose()
        await pool.disconnect()
    sent = [
        ("SET", "key", "value"),
        ("SET", "key", "é"),
        ("EVALSHA", "a" * 40, 1, "key", b"\x00\xff"),
    ]
    assert CountingConnection.packed == sent
    assert bytes(sink.received) == b"".join(python_packed(*command) for command in sent)


# redis-py, a cluster node's own connection and the slot map read again: the node's connection
# settings are the client's, and reading the map again follows what CLUSTER SLOTS now says.


def test_a_cluster_node_connection_has_the_cluster_client_settings() -> None:
    cluster = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", 7000)],
        protocol=2,
        password="secret",
        socket_timeout=3.0,
    )
    [node] = cluster.nodes_manager.startup_nodes.values()
    connection = cluster_node_connection(node)
    assert isinstance(connection, Connection)
    assert (connection.host, connection.port) == ("127.0.0.1", 7000)
    assert connection.password == "secret"
    assert connection.protocol == 2
    assert connection.socket_timeout == 3.0


class SlotsSink(OkSink):
    """A node that answers CLUSTER SLOTS with every slot on ``owner_port``, and +OK to the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.owner_port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while header := await reader.readline():
                words = []
                for _ in range(int(header[1:])):
                    length = await reader.readline()
                    words.append((await reader.readexactly(int(length[1:]) + 2))[:-2])
                if [word.upper() for word in words[:2]] == [b"CLUSTER", b"SLOTS"]:
                    writer.write(
                        b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$2\r\nid\r\n"
                        % self.owner_port
                    )
                else:
                    writer.write(b"+OK\r\n")
                await writer.drain()
        finally:
            writer.close()


async def test_reading_the_slot_map_again_follows_what_cluster_slots_says_now() -> None:
    sink = SlotsSink()
    server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
    sink.port = sink.owner_port = server.sockets[0].getsockname()[1]
    async with server:
        cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", sink.port)], protocol=2)
        try:
            await cluster.nodes_manager.initialize()
            assert getattr(cluster.get_node_from_key("key"), "port", None) == sink.port
            # The slots move to another node (one that need not answer: only the map is read).
            sink.owner_port = sink.port + 1
            await refresh_slot_map(cluster)
            assert getattr(cluster.get_node_from_key("key"), "port", None) == sink.port + 1
        finally:
            await cluster.aclose()


async def test_writing_on_a_connection_closed_meanwhile_is_a_dropped_connection(
    sink: OkSink,
) -> None:
    """The write redis-py does once it has checked that the connection is open, after another
    task closed it: what the event log retries as a lost connection."""
    connection = Connection(host="127.0.0.1", port=sink.port, protocol=2)
    await connection.connect()
    await connection.disconnect()
    with pytest.raises(AttributeError) as raised:
        await connection._send_packed_command([b"PING"])
    assert is_dropped_connection(raised.value)
    assert not is_dropped_connection(AttributeError("'Event' object has no attribute 'x'"))
    assert not is_dropped_connection(AttributeError("'NoneType' object has no attribute 'x'"))


def test_writing_on_a_socket_uvloop_has_closed_is_a_dropped_connection() -> None:
    """The write redis-py does on a connection whose socket was closed under it (the node died),
    on uvloop, where the services run."""

    async def write_after_the_socket_closed() -> BaseException:
        sink = OkSink()
        server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
        async with server:
            connection = Connection(
                host="127.0.0.1", port=server.sockets[0].getsockname()[1], protocol=2
            )
            await connection.connect()
            connection._writer.transport.abort()
            with pytest.raises(RuntimeError) as raised:
                await connection.send_packed_command([b"PING"], check_health=False)
            return raised.value

    assert is_dropped_connection(uvloop.run(write_after_the_socket_closed()))
    assert not is_dropped_connection(RuntimeError("Event loop is closed"))
