"""Commands packed by hiredis (shared.redis_client) are the bytes redis-py's own asyncio packer
writes, for every kind of argument chatstream sends; bad arguments fail the same way."""

from __future__ import annotations

import pytest
from redis.asyncio import Connection
from redis.exceptions import DataError

from shared.redis_client import HiredisPackingConnection, tcp_connection_class

COMMANDS = [
    ("SET", "key", "value"),
    ("SET", "key", "é, non-ASCII text"),
    ("ZADD", "leases", 1733140000.125, "lease-id"),
    ("ZADD", "leases", float("inf"), "lease-id"),
    ("EXPIRE", "key", 30),
    ("EVAL", "return redis.call('GET', KEYS[1])", 1, "key"),
    ("CONFIG GET", "maxmemory"),
    (b"PUBLISH", b"channel", b"\x81\xa1v\x01\x00\xff"),
    ("SET", "key", memoryview(b"bytes")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: str(command[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(command: tuple[object, ...]) -> None:
    by_python = b"".join(Connection().pack_command(*command))  # type: ignore[arg-type]
    by_hiredis = b"".join(HiredisPackingConnection().pack_command(*command))  # type: ignore[arg-type]
    assert by_hiredis == by_python


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
