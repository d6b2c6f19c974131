"""A TCP proxy that cuts a streaming connection mid-answer, as a dying load balancer would.

It forwards bytes both ways and records each connection's request head. The first connection
whose response carries ``cut_after_tokens`` token events is aborted (a reset, not a clean close);
every later connection passes untouched, so the client's resume can succeed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

TOKEN_MARK = b'"type":"token"'
METHODS = frozenset({b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS"})


@dataclass
class CutProxy:
    upstream_port: int
    cut_after_tokens: int = 2
    port: int = 0
    request_heads: list[bytes] = field(default_factory=list)
    cuts: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    def requests_for(self, path_prefix: str) -> list[bytes]:
        return [
            h for h in self.request_heads if h.split(b" ", 2)[1].startswith(path_prefix.encode())
        ]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.transport.abort()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                self._upstream(client_r, upstream_w),
                self._downstream(upstream_r, client_w, upstream_w),
            )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            client_w.transport.abort()
            upstream_w.transport.abort()
            self._tasks.discard(task)

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            # A client writes a request head in one go; a keep-alive connection carries several.
            if chunk.split(b" ", 1)[0] in METHODS:
                self.request_heads.append(chunk.split(b"\r\n\r\n", 1)[0])
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def _downstream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        seen = b""
        while chunk := await reader.read(65536):
            armed = self.cuts == 0
            if armed:
                seen += chunk
            writer.write(chunk)
            await writer.drain()
            if armed and seen.count(TOKEN_MARK) >= self.cut_after_tokens:
                self.cuts += 1
                writer.transport.abort()
                upstream.transport.abort()
                return
        writer.close()
