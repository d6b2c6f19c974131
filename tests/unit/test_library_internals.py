"""What shared/library_internals.py relies on still holds: a failure here means an upgrade
changed a library's internals, and the section of that module it names must be revisited.

redis-py, commands packed by hiredis: the asyncio connection still packs through
``pack_command`` (alone and in a pipeline), and hiredis packs the bytes redis-py's own asyncio
packer writes, for every kind of argument chatstream sends; bad arguments fail the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from redis.asyncio import Connection, ConnectionPool, Redis
from redis.exceptions import DataError
from redis.typing import EncodableT

from shared.library_internals import HiredisPackingConnection
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
