"""Streaming one job to one client: subscribe, backfill from the replay log, then relay live
frames with heartbeats until the job's final event, a slow-client cut, a drain, or a client that
left.

On aiohttp's public API, in the shape of aiohttp-sse: the handler prepares a ``StreamResponse``,
writes each batch of frames with ``write`` (bounded by the send timeout, so a client that stops
reading is cut off instead of growing the gateway's memory), ends the body with ``write_eof``
and returns the response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import HttpVersion11, web
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.auth import user_of
from gateway.client_stream import ClientStream
from gateway.errors import unavailable
from gateway.fanout import EventFanout, FanoutUnavailableError
from gateway.metrics import METRICS
from gateway.request_trace import record_stream
from gateway.stalls import StallWatch, StreamUnavailableError
from shared import events, replay_log, sse, tracing
from shared.events import Event
from shared.ids import new_id
from shared.jobqueue import QueueUnavailableError
from shared.library_internals import (
    forget_sent_headers,
    write_chunk_now,
    writes_straight_through,
)
from shared.logging import get_logger
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


def sse_frame(frame: Event) -> bytes:
    return frame.sse


def sse_heartbeat(phase: str) -> bytes:
    return sse.data_frame(sse.json_line(events.heartbeat_payload(phase)))


@dataclass(frozen=True, slots=True)
class Encoding:
    """How frames and heartbeats go on the wire: chatstream's events by default; the /v1
    routes map them to OpenAI chunks and keep-alive comments instead."""

    frame: Callable[[Event], bytes] = sse_frame
    heartbeat: Callable[[str], bytes] = sse_heartbeat
    # OpenAI clients parse a ``retry:``-only message as an empty chunk, so theirs has none.
    retry: bool = True


SSE_ENCODING = Encoding()


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """What to stream: a job's events, after a seq, in an encoding."""

    job_id: str
    session_id: str
    # The assistant message the job writes (marked `error` if the job stalls).
    message_id: str
    # Replay starts after this seq (Last-Event-ID); 0 replays the whole job.
    after_seq: int = 0
    encoding: Encoding = SSE_ENCODING


class StartsJob(Protocol):
    """A job the stream starts: its turn (gateway/turns.py), stored while the stream
    subscribes, and sent once it has, so that the stream misses none of its events."""

    async def store(self, lease_id: str) -> bytes:
        """Store the turn, taking the stream's lease in the same round trip (a refused stream
        stores nothing); the stream's opening, written right after ``retry:``."""
        ...

    async def submit(self) -> None:
        """Send the job."""
        ...

    async def abandon(self) -> None:
        """Mark the stored turn failed: its job will not be sent."""
        ...


async def stream_job(
    request: web.Request, spec: StreamRequest, starts: StartsJob | None = None
) -> web.StreamResponse:
    """Stream a job's events as SSE: take the stream's lease, subscribe, read the replay log
    (or store the turn that ``starts`` the job, and send it), write the first bytes, then relay
    frames, and a heartbeat whenever the client has had none for a heartbeat interval, until
    the job's final event, a slow-client cut, a drain, or a client that left. Failures before
    the first byte are JSON (raised as API errors). Returns the response once its body has
    ended, or once the client is gone (aiohttp then finds the connection closed).

    The relay loop runs in this frame, the one an idle stream waits in for its whole life:
    what only the opening needs stays in the frames of :func:`_open_stream`."""
    stream, response = await _open_stream(request, spec, starts)
    # Nothing awaits from here until the try: a cancellation lands in it, or in _open_stream,
    # which ends the stream itself.
    del starts
    client, outcome = stream.client, stream.outcome
    app = request.app
    stall = StallWatch(
        app[appkeys.STALLS], app[appkeys.SETTINGS].job_stall_s, spec.job_id, spec.message_id, client
    )
    encoding, heartbeat_s = spec.encoding, app[appkeys.SETTINGS].heartbeat_interval_s
    loop = asyncio.get_running_loop()
    next_heartbeat = loop.time() + heartbeat_s
    outcome.close_reason = "streaming"
    if writes_straight_through(response):
        client.direct_writer = stream
    try:
        with app[METRICS].relaying():
            try:
                try:
                    while True:
                        waiter = client.waiter(next_heartbeat)
                        if waiter is not None:
                            await waiter
                        if await _forward(request, response, client, encoding, outcome):
                            break
                        if loop.time() >= next_heartbeat:
                            phase = "running" if client.queued_seq > 0 else "queued"
                            await _send(request, response, encoding.heartbeat(phase))
                            next_heartbeat += heartbeat_s
                            await stall.check()
                except StreamUnavailableError as e:
                    # Written like any other frame: a client too slow for it, or gone, is
                    # handled below.
                    outcome.close_reason = "unavailable"
                    await _send(request, response, _error_frame(str(e), "unavailable"), last=True)
            except _SlowClientError:
                # Its socket buffers are full: nothing more can reach it, so cut it off.
                outcome.close_reason = "slow_client"
                if request.transport is not None:
                    request.transport.abort()
            except _ClientGoneError:
                outcome.close_reason = "client_gone"
    except asyncio.CancelledError:
        # aiohttp cancels the handler of a client that closed its connection.
        outcome.close_reason = "client_gone"
        raise
    finally:
        client.direct_writer = None
        await stream.end()
    return response


async def _open_stream(
    request: web.Request, spec: StreamRequest, starts: StartsJob | None
) -> tuple[_Stream, web.StreamResponse]:
    """The stream open and its response's first bytes written; a stream that fails before
    is ended here."""
    app = request.app
    # Made here for each stream, not the request id: a client chooses that one (X-Request-ID)
    # and may give it to several streams, which would then share one slot.
    lease_id = new_id()
    await _hold_stream_lease(request, lease_id, taken_by_turn=starts is not None)
    client = ClientStream(
        max_buffer_bytes=app[appkeys.SETTINGS].slow_client_buffer_bytes,
        ticker=app[appkeys.HEARTBEAT_TICKER],
        after_seq=spec.after_seq,
    )
    app[appkeys.DRAIN].register(client)
    stream = _Stream(request, spec, client, lease_id)
    try:
        response = await _open(request, spec, client, starts, lease_id)
    except BaseException as e:
        if isinstance(e, asyncio.CancelledError):
            stream.outcome.close_reason = "client_gone"
        await stream.end()
        raise
    return stream, response


async def _forward(
    request: web.Request,
    response: web.StreamResponse,
    client: ClientStream,
    encoding: Encoding,
    outcome: _Outcome,
) -> bool:
    """Write what the client's buffer holds; whether the stream has ended."""
    if client.overflowed:
        outcome.close_reason = "slow_client"
        await _send(request, response, _slow_client_frame(), last=True)
        return True
    frames = client.take()
    if frames:
        # The job's last frames and the end of the body go out in one write.
        ends = frames[-1].type in events.TERMINAL_TYPES
        data = b"".join(encoding.frame(frame) for frame in frames)
        await _send(request, response, data, last=ends)
        outcome.count(frames)
        if ends:
            outcome.close_reason = frames[-1].type
            return True
    if client.draining:
        # The client reconnects with Last-Event-ID, to another gateway.
        outcome.close_reason = "drain"
        await _send(request, response, b"", last=True)
        return True
    return False


async def _open(
    request: web.Request,
    spec: StreamRequest,
    client: ClientStream,
    starts: StartsJob | None,
    lease_id: str,
) -> web.StreamResponse:
    """Subscribe, read the replay log (or store the turn and send its job), then write the
    response's first bytes: ``retry:`` and the opening."""
    settings = request.app[appkeys.SETTINGS]
    fanout = request.app[appkeys.FANOUT]
    opening = b""
    try:
        if starts is None:
            # The job may have published already: live frames wait for the replay log.
            client.hold_live()
            await fanout.subscribe(spec.job_id, client)
        else:
            # A job not yet sent has published nothing: there is no log to read.
            opening = await _store_while_subscribing(fanout, spec.job_id, client, starts, lease_id)
    except FanoutUnavailableError as e:
        raise unavailable("the event store cannot be reached") from e
    if starts is None:
        try:
            replayed = await _read_replay(request, spec.job_id, spec.after_seq)
        except RedisError as e:
            raise unavailable("the event store cannot be reached") from e
        client.release_live(replayed)
    else:
        try:
            await asyncio.shield(starts.submit())
        except QueueUnavailableError as e:
            raise unavailable("the job queue cannot be reached") from e
    response = web.StreamResponse(
        status=200,
        headers={**SSE_HEADERS, "X-Job-Id": spec.job_id, "X-Session-Id": spec.session_id},
    )
    if request.version == HttpVersion11:
        # Chunked for certain, so that frames can be written past the response's writer.
        response.enable_chunked_encoding()
    await response.prepare(request)
    # An idle stream holds its response as long as it lives.
    forget_sent_headers(response)
    retry = sse.retry_frame(settings.sse_retry_ms) if spec.encoding.retry else b""
    await response.write(retry + opening)
    return response


async def _store_while_subscribing(
    fanout: EventFanout, job_id: str, client: ClientStream, starts: StartsJob, lease_id: str
) -> bytes:
    """Subscribe ``client`` to the job while its turn is stored: the store's round trip and
    Redis's confirmation of the subscription overlap, and both are done before the job can be
    sent. Returns the opening."""
    subscribing = asyncio.ensure_future(fanout.subscribe(job_id, client))
    try:
        opening = await starts.store(lease_id)
    except BaseException:
        await cancel_and_wait(subscribing)
        if not subscribing.cancelled():
            subscribing.exception()  # retrieved: the store's failure is the one to report
        raise
    try:
        await subscribing
    except BaseException:
        await asyncio.shield(starts.abandon())
        raise
    return opening


async def _hold_stream_lease(request: web.Request, lease_id: str, *, taken_by_turn: bool) -> None:
    """Take the stream's lease unless its turn takes it (in the round trip that stores it),
    and keep it renewed while the stream is open (a renewal never brings back a lease that was
    not taken)."""
    leases = request.app[appkeys.STREAM_LEASES]
    user_id = user_of(request)
    if not taken_by_turn:
        await leases.acquire(user_id, lease_id)
    leases.hold(user_id, lease_id)


@dataclass(slots=True)
class _Outcome:
    close_reason: str = "error_before_stream"
    events: int = 0
    first_event_at: float | None = None
    first_token_at: float | None = None

    def count(self, frames: list[Event]) -> None:
        self.events += len(frames)
        if self.first_token_at is None:
            if self.first_event_at is None:
                self.first_event_at = time.monotonic()
            if any(f.type == events.TOKEN for f in frames):
                self.first_token_at = time.monotonic()

    def ttft_ms(self, request: web.Request) -> int | None:
        if self.first_token_at is None:
            return None
        started_at: float = request[appkeys.STARTED_AT]
        return round((self.first_token_at - started_at) * 1000)


@dataclass(slots=True)
class _Stream:
    """An open stream: what its end lets go of, and what it logs."""

    request: web.Request
    spec: StreamRequest
    client: ClientStream
    lease_id: str
    outcome: _Outcome = field(default_factory=_Outcome)

    def write_now(self, frames: list[Event]) -> bool:
        """Write ``frames`` here and now, as the fanout hands them over, if the socket takes
        them without waiting; False leaves them to the relay. Called only while the relay waits
        with nothing else pending (see ``ClientStream._flush``), so frames keep their order."""
        if frames[-1].type in events.TERMINAL_TYPES:
            # The relay ends the body with the job's last frame.
            return False
        encode = self.spec.encoding.frame
        data = b"".join([encode(frame) for frame in frames])
        transport = self.request.transport
        if data:
            if transport is None or not _cannot_wait(transport, len(data)):
                # The relay writes them, under the send timeout.
                return False
            write_chunk_now(transport, data)
        self.outcome.count(frames)
        return True

    async def end(self) -> None:
        """Let go of the subscription, the registrations and the lease, and log the stream's
        line (``stream.closed``) before the release: a client that closes once it has read the
        end cancels the handler, and the cancellation lands on that await."""
        request, spec, outcome = self.request, self.spec, self.outcome
        app = request.app
        ttft_ms = outcome.ttft_ms(request)
        self.client.stop_alarm()
        app[appkeys.FANOUT].unsubscribe(spec.job_id, self.client)
        app[appkeys.DRAIN].unregister(self.client)
        log.info(
            "stream.closed",
            job_id=spec.job_id,
            session_id=spec.session_id,
            close_reason=outcome.close_reason,
            events=outcome.events,
            ttft_ms=ttft_ms,
            duration_ms=round((time.monotonic() - request[appkeys.STARTED_AT]) * 1000),
            resumed_from=spec.after_seq,
        )
        span = tracing.current_span()
        if span is not None:
            record_stream(
                span,
                job_id=spec.job_id,
                close_reason=outcome.close_reason,
                events=outcome.events,
                first_event_at=outcome.first_event_at,
                first_token_at=outcome.first_token_at,
            )
        app[METRICS].stream_closed(
            close_reason=outcome.close_reason,
            events=outcome.events,
            ttft_ms=ttft_ms,
            resumed_from=spec.after_seq,
        )
        # Last: in a cancelled handler this await raises at once (the release still runs).
        leases = app[appkeys.STREAM_LEASES]
        await asyncio.shield(leases.release(user_of(request), self.lease_id))


async def _read_replay(request: web.Request, job_id: str, after_seq: int) -> list[Event]:
    names = request.app[appkeys.SETTINGS].connections.names
    return await replay_log.read_after(request.app[appkeys.REDIS], names, job_id, after_seq)


class _SlowClientError(Exception):
    """The client stopped reading: a write did not complete within the send timeout."""


class _ClientGoneError(Exception):
    """The client closed its connection: a write found it gone."""


async def _send(
    request: web.Request, response: web.StreamResponse, data: bytes, *, last: bool = False
) -> None:
    """Write ``data``; with ``last``, end the body in the same write. A client that has not
    taken it within the send timeout is a slow client."""
    write = response.write_eof if last else response.write
    try:
        if _cannot_wait(request.transport, len(data)):
            # No timer: arming one per write was a large share of the relay's CPU per event.
            await write(data)
            return
        async with asyncio.timeout(request.app[appkeys.SETTINGS].send_timeout_s):
            await write(data)
    except TimeoutError as e:
        raise _SlowClientError from e
    except ConnectionError as e:
        # aiohttp's writer raises ClientConnectionResetError on a closed transport, and a
        # ConnectionError for a connection lost while the write waited.
        raise _ClientGoneError from e


# The most aiohttp adds to a write: a chunk's size line and CRLF, and the last chunk.
_CHUNK_FRAMING_BYTES = 32


def _cannot_wait(transport: asyncio.Transport | None, size: int) -> bool:
    """Whether a write of ``size`` bytes is sure to complete without waiting for the client.
    A write waits only while the transport has paused writing (asyncio's flow control): it
    pauses once its buffer goes over the high-water mark and resumes once the buffer is back
    at the low-water mark. A buffer at or below the low mark is not paused, and a write that
    keeps it at or below the high mark does not pause it."""
    if transport is None or transport.is_closing():
        return False
    buffered = transport.get_write_buffer_size()
    low, high = transport.get_write_buffer_limits()
    return buffered <= low and buffered + size + _CHUNK_FRAMING_BYTES <= high


def _slow_client_frame() -> bytes:
    return _error_frame(
        "the client reads too slowly; reconnect with Last-Event-ID to resume", "slow_client"
    )


def _error_frame(message: str, code: str) -> bytes:
    """An error for this client alone, outside the job's sequence (so without an id)."""
    payload = {"type": events.ERROR, **events.error_payload(message, code)}
    return sse.data_frame(sse.json_line(payload))
