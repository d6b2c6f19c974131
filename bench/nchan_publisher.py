"""``python -m bench.nchan_publisher``: the synthetic publisher of the nchan peer row
(bench/nchan.py). It publishes the same token events as ``bench.publisher``, at the same rate
and by the same loop (:func:`bench.publisher.publish_for`), each with its publish time
(``time.monotonic_ns()``) as its content, so the load client times it the same way.

nchan takes a message by HTTP, one ``POST /pub?id=<channel>`` per message, where a chatstream
worker runs one Redis script per job's batch: that difference is the peer's, and is measured,
not subtracted. The requests are written by hand on kept-alive connections, the events due in
one tick in one write per connection (HTTP pipelining), for the reason ``bench.publisher``
uses a bare Redis connection: the load generator must cost the machine little next to what it
measures.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast

import httptools
import uvloop

from bench import publisher, toolio
from bench.sse_raw import host_port

PUBLISH_PATH = "/pub"
# nginx answers one connection's pipelined requests one after another, each once nchan's
# Redis script replied: several connections keep a tick's publishes in flight together, as
# several workers' would be.
CONNECTIONS = 8


class PublishConnection(asyncio.Protocol):
    """One kept-alive connection to nginx: a batch of requests goes out in one write, and
    :meth:`send` returns their statuses once every answer came back."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[asyncio.Future[int]] = deque()
        self._status = 0

    @classmethod
    async def open(cls, url: str) -> PublishConnection:
        host, port = host_port(url)
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    async def send(self, requests: list[bytes]) -> list[int]:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("nginx closed the publisher's connection")
        loop = asyncio.get_running_loop()
        answers = [loop.create_future() for _ in requests]
        self._waiting.extend(answers)
        self._transport.write(b"".join(requests))
        return list(await asyncio.gather(*answers))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        while self._waiting:
            self._waiting.popleft().set_exception(exc or ConnectionError("closed by nginx"))

    # httptools callbacks

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_message_complete(self) -> None:
        if self._waiting:
            self._waiting.popleft().set_result(self._status)


class NchanChannels:
    """Token events round-robin over nchan channels, one HTTP publish each; what
    :func:`bench.publisher.publish_for` drives."""

    def __init__(self, url: str, connections: list[PublishConnection], channels: list[str]):
        host, port = host_port(url)
        self._head = f"Host: {host}:{port}\r\n"
        self._connections = connections
        self._channels = channels
        self.published = 0
        # Publishes nchan did not take (an answer other than 201 or 202).
        self.refused = 0

    async def publish(self, count: int) -> None:
        stamp = time.monotonic_ns()
        body = b'{"type":"token","content":"%d"}' % stamp
        batches: list[list[bytes]] = [[] for _ in self._connections]
        for i in range(count):
            channel = self._channels[(self.published + i) % len(self._channels)]
            batches[i % len(batches)].append(
                (
                    f"POST {PUBLISH_PATH}?id={channel} HTTP/1.1\r\n{self._head}"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
        answers = await asyncio.gather(
            *(c.send(batch) for c, batch in zip(self._connections, batches, strict=True) if batch)
        )
        self.refused += sum(status not in (201, 202) for statuses in answers for status in statuses)
        self.published += count


async def main() -> None:
    spec = toolio.spec()
    channels = toolio.read_job_ids(spec["job_ids_file"])
    connections = [await PublishConnection.open(spec["url"]) for _ in range(CONNECTIONS)]
    try:
        jobs = NchanChannels(spec["url"], connections, channels)
        report = await publisher.publish_and_report(jobs, spec)
        toolio.emit({**report, "refused": jobs.refused})
    finally:
        for connection in connections:
            connection.close()


if __name__ == "__main__":
    uvloop.run(main())
