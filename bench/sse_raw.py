"""Chat streams read straight off their sockets, for the load generator: one stream per
connection (``RawStream``, the ``streams`` mode) or one chat after another on a kept-alive
connection (``KeptConnection``). A stream is a chat's (``chat_request``) or, for the peer row,
an nchan channel's EventSource subscription (``subscribe_request``, bench/nchan.py): both are
read the same way, frame by frame.

Through aiohttp's client, each chunk of a stream costs a task wake-up and a trip through its
stream reader: at tens of thousands of events a second the load generator then spent about half
as much CPU as the gateway it measured, on the same two cores. Here an asyncio protocol takes each
read as it arrives: httptools parses the HTTP response and its chunked body, and the SSE frames
are split by hand (the gateway writes ``\\n\\n``-terminated ones).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

STREAM_PATH = "/api/v1/chat/stream"
NCHAN_SUBSCRIBE_PATH = "/sub/"
# The most of a refused open's body kept for its error.
ERROR_BODY_BYTES = 200
# A kept-alive chat's connect, or its whole response, taking longer is counted as an error.
CHAT_TIMEOUT_S = 30.0

END, CLOSED, BROKEN = "end", "closed", "broken"

# Called with the stream, the frames of one read and the read's time (monotonic ns); True ends
# the stream.
FrameSink = Callable[["RawStream", list[bytes], int], bool]


class Frames:
    """Splits an SSE byte stream into frames (the gateway writes ``\\n\\n``-terminated ones)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        *frames, self._rest = (self._rest + chunk).split(b"\n\n")
        return frames


class _Response(asyncio.Protocol):
    """What both clients read the same way: httptools parses the response, a 200's body is
    split into SSE frames handed to :meth:`_frames_read` with the read's time, and a refusal's
    status and the start of its body make :meth:`_refusal`."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._frames = Frames()
        self._read_at_ns = 0
        self._status = 0
        self._refused_body = b""

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _frames_read(self, frames: list[bytes]) -> None:
        raise NotImplementedError

    def _broke(self, error: BaseException) -> None:
        """The response cannot be read on: the parser refused it or the connection closed."""
        raise NotImplementedError

    def _refusal(self) -> RuntimeError:
        return RuntimeError(f"{self._status}: {self._refused_body.decode(errors='replace')}")

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._read_at_ns = time.monotonic_ns()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._broke(e)

    # httptools callbacks

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._status != 200:
            self._refused_body = (self._refused_body + body)[:ERROR_BODY_BYTES]
            return
        frames = self._frames.feed(body)
        if frames:
            self._frames_read(frames)


class RawStream(_Response):
    """One stream's request and its response, frame by frame into ``sink``. ``job_id`` names
    the stream: the gateway's ``X-Job-Id`` once its headers came, else the one given (an nchan
    channel's id, which the client chose)."""

    def __init__(self, request: bytes, sink: FrameSink, job_id: str = "") -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self._request = request
        self._sink = sink
        self.job_id = job_id
        self.headers: dict[str, str] = {}
        # Resolves once a 200's headers arrived; fails with the status and body of a refusal.
        self.opened: asyncio.Future[None] = loop.create_future()
        # Resolves when the stream is over, to how it ended: ``END`` (its last event came),
        # ``CLOSED`` (the body ended without one, as on a gateway's drain) or ``BROKEN``.
        self.ended: asyncio.Future[str] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        cast(asyncio.Transport, transport).write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._broke(exc or ConnectionError("closed before a response"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.job_id = self.headers.get("x-job-id", self.job_id)
        if self._status == 200 and not self.opened.done():
            self.opened.set_result(None)

    def on_message_complete(self) -> None:
        if self._status != 200:
            self._finish(BROKEN, error=self._refusal())
        else:
            self._finish(CLOSED)

    def _frames_read(self, frames: list[bytes]) -> None:
        if self._sink(self, frames, self._read_at_ns):
            self._finish(END)

    def _broke(self, error: BaseException) -> None:
        self._finish(BROKEN, error=error)

    def _finish(self, how: str, error: BaseException | None = None) -> None:
        if not self.opened.done():
            self.opened.set_exception(error or ConnectionError("the body ended before it began"))
        if not self.ended.done():
            self.ended.set_result(how)
        self.close()


class KeptConnection(_Response):
    """A keep-alive connection that carries one chat stream after another, each read to the
    end of its body before the next request goes, as a browser reuses its connections (the
    ``ttft`` and ``chats`` modes; aiohttp's client cost about 0.7 ms of CPU per chat there)."""

    def __init__(self) -> None:
        super().__init__()
        self._on_frames: Callable[[list[bytes], int], None] = _ignore_frames
        self._done: asyncio.Future[None] | None = None
        self._broken: BaseException | None = None

    @classmethod
    async def open(cls, url: str) -> KeptConnection:
        host, port = host_port(url)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CHAT_TIMEOUT_S):
            _, connection = await loop.create_connection(cls, host, port)
        return connection

    @property
    def reusable(self) -> bool:
        """False once the gateway closed the connection or said it would."""
        return self._broken is None and self._transport is not None

    async def chat(self, request: bytes, on_frames: Callable[[list[bytes], int], None]) -> None:
        """Send ``request`` and hand its response's frames to ``on_frames`` (with the read's
        monotonic ns) until the body ends. Raises RuntimeError("<status>: <body>") for a
        refusal, ConnectionError when the connection breaks, TimeoutError when the response
        takes longer than ``CHAT_TIMEOUT_S``; after any of them it cannot be used again."""
        if self._transport is None or not self.reusable:
            raise ConnectionError("the connection is closed") from self._broken
        self._on_frames = on_frames
        self._frames = Frames()
        self._status, self._refused_body = 0, b""
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        try:
            async with asyncio.timeout(CHAT_TIMEOUT_S):
                await self._done
        except TimeoutError:
            # Mid-response: what is left of it would be read as the next chat's.
            self._broke(TimeoutError("no end to the response"))
            raise

    def connection_lost(self, exc: Exception | None) -> None:
        self._broke(exc or ConnectionError("closed by the gateway"))

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            if self._status == 200:
                self._done.set_result(None)
            else:
                self._done.set_exception(self._refusal())
        if not self._parser.should_keep_alive():
            self._broke(ConnectionError("the gateway closes the connection"))

    def _frames_read(self, frames: list[bytes]) -> None:
        self._on_frames(frames, self._read_at_ns)

    def _broke(self, error: BaseException) -> None:
        self._broken = self._broken or error
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError(f"the stream broke: {error!r}"))
        self.close()


def _ignore_frames(_frames: list[bytes], _read_at_ns: int) -> None:
    pass


def chat_request(url: str, key: str, text: str) -> bytes:
    """``POST /api/v1/chat/stream`` of ``text`` with the echo pipeline, as bytes to send."""
    host, port = host_port(url)
    body = json.dumps({"text": text, "pipeline": "echo"}).encode()
    return (
        f"POST {STREAM_PATH} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Accept: text/event-stream\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def subscribe_request(url: str, channel: str) -> bytes:
    """An EventSource subscription to nchan's ``channel`` (bench/nchan.py's subscriber
    location), as bytes to send: nchan answers 403 without ``Accept: text/event-stream``."""
    host, port = host_port(url)
    return (
        f"GET {NCHAN_SUBSCRIBE_PATH}{channel} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def open_raw_stream(url: str, request: bytes, sink: FrameSink, job_id: str = "") -> RawStream:
    """Send ``request`` (``chat_request`` or ``subscribe_request``) and open the stream whose
    frames go to ``sink``; raises RuntimeError("<status>: <body>") when the server refuses it,
    OSError when it cannot be reached."""
    loop = asyncio.get_running_loop()
    host, port = host_port(url)
    _, stream = await loop.create_connection(lambda: RawStream(request, sink, job_id), host, port)
    try:
        await stream.opened
    except BaseException:
        stream.close()
        raise
    return stream
