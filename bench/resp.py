"""A bare RESP2 connection for a load generator: hiredis packs the commands and parses the
replies, and nothing else runs per command. Through redis-py's pipeline, the synthetic worker
spent about 36 µs of CPU per event (a timeout context and a parse call per reply, the pool, the
retry wrapper), most of a core at 20,000 events/s on a machine it shares with the gateway it
measures; the bytes on the wire are the same."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

import hiredis

READ_BYTES = 1 << 16

Command = Sequence[str | int | float | bytes]


class RespConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader()

    @classmethod
    async def open(cls, url: str) -> RespConnection:
        """Connect to a ``redis://host:port/db`` URL (no password: the bench's local Redis)."""
        parts = urlsplit(url)
        if parts.scheme != "redis" or parts.username or parts.password:
            raise ValueError(f"only redis://host:port/db is supported, not {url!r}")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 6379)
        connection = cls(reader, writer)
        db = parts.path.lstrip("/")
        if db and db != "0":
            await connection.execute([("SELECT", db)])
        return connection

    async def execute(self, commands: Sequence[Command]) -> list[object]:
        """Send ``commands`` in one write and return their replies, all read before the first
        error reply, if any, is raised. One call at a time: replies are matched by order. After
        a ConnectionError the connection cannot be used again."""
        # hiredis's stub types the command as a one-element tuple; it takes any length.
        packed = [hiredis.pack_command(tuple(c)) for c in commands]  # type: ignore[arg-type]
        self._writer.write(b"".join(packed))
        replies: list[object] = []
        while len(replies) < len(commands):
            reply = self._parser.gets()
            if reply is False:
                data = await self._reader.read(READ_BYTES)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                self._parser.feed(data)
            else:
                replies.append(reply)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise reply
        return replies

    async def aclose(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
