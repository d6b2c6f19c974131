"""Streaming one job to one client: subscribe, backfill from the replay log, then relay live
frames with heartbeats until the job's final event, a slow-client cut, or a client that left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys, sse
from gateway.client_stream import ClientStream
from gateway.errors import unavailable
from gateway.fanout import FanoutUnavailableError
from gateway.frames import Frame, frame_from_event
from gateway.metrics import METRICS
from shared import events, replay_log
from shared.jobqueue import QueueUnavailableError
from shared.logging import get_logger

log = get_logger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


@dataclass(frozen=True, slots=True)
class StreamRequest:
    job_id: str
    session_id: str
    # Replay starts after this seq (Last-Event-ID); 0 replays the whole job.
    after_seq: int = 0
    # Written right after ``retry:``, before any job event (the snapshot of seed 004).
    opening: bytes = b""
    # Sends the job once the stream is subscribed, so that no event can be missed.
    submit: Callable[[], Awaitable[None]] | None = None


async def stream_job(request: web.Request, spec: StreamRequest) -> web.StreamResponse:
    """Stream a job's events to the client as SSE. Failures before the first byte are JSON."""
    app = request.app
    settings = app[appkeys.SETTINGS]
    fanout = app[appkeys.FANOUT]
    client = ClientStream(max_buffer_bytes=settings.client_buffer_bytes, after_seq=spec.after_seq)
    client.hold_live()
    try:
        await fanout.subscribe(spec.job_id, client)
    except FanoutUnavailableError as e:
        raise unavailable("the event store cannot be reached") from e
    outcome = _Outcome()
    try:
        try:
            replayed = await _read_replay(request, spec.job_id, spec.after_seq)
        except RedisError as e:
            raise unavailable("the event store cannot be reached") from e
        client.release_live(replayed)
        if spec.submit is not None:
            try:
                await asyncio.shield(spec.submit())
            except QueueUnavailableError as e:
                raise unavailable("the job queue cannot be reached") from e
        response = web.StreamResponse(
            status=200,
            headers={**SSE_HEADERS, "X-Job-Id": spec.job_id, "X-Session-Id": spec.session_id},
        )
        await response.prepare(request)
        await response.write(sse.retry_frame(settings.sse_retry_ms) + spec.opening)
        with app[METRICS].relaying():
            await _relay(response, client, settings.heartbeat_interval_s, outcome)
        return response
    except asyncio.CancelledError:
        outcome.close_reason = "client_gone"
        raise
    finally:
        fanout.unsubscribe(spec.job_id, client)
        log.info(
            "stream.closed",
            job_id=spec.job_id,
            session_id=spec.session_id,
            close_reason=outcome.close_reason,
            events=outcome.events,
            ttft_ms=outcome.ttft_ms(request),
            duration_ms=round((time.monotonic() - request[appkeys.STARTED_AT]) * 1000),
            resumed_from=spec.after_seq,
        )
        app[METRICS].stream_closed(
            close_reason=outcome.close_reason,
            events=outcome.events,
            ttft_ms=outcome.ttft_ms(request),
            resumed_from=spec.after_seq,
        )


@dataclass(slots=True)
class _Outcome:
    close_reason: str = "error_before_stream"
    events: int = 0
    first_token_at: float | None = None

    def ttft_ms(self, request: web.Request) -> int | None:
        if self.first_token_at is None:
            return None
        started_at: float = request[appkeys.STARTED_AT]
        return round((self.first_token_at - started_at) * 1000)


async def _read_replay(request: web.Request, job_id: str, after_seq: int) -> list[Frame]:
    names = request.app[appkeys.SETTINGS].connections.names
    logged = await replay_log.read_after(request.app[appkeys.REDIS], names, job_id, after_seq)
    return [frame_from_event(event) for event in logged]


async def _relay(
    response: web.StreamResponse, client: ClientStream, heartbeat_s: float, outcome: _Outcome
) -> None:
    loop = asyncio.get_running_loop()
    next_heartbeat = loop.time() + heartbeat_s
    outcome.close_reason = "streaming"
    try:
        while True:
            has_frames = await client.wait(max(0.0, next_heartbeat - loop.time()))
            if client.overflowed:
                client.take()
                await response.write(_slow_client_frame())
                outcome.close_reason = "slow_client"
                return
            if has_frames:
                frames = client.take()
                await response.write(b"".join(frame.wire for frame in frames))
                outcome.events += len(frames)
                if outcome.first_token_at is None and any(f.type == events.TOKEN for f in frames):
                    outcome.first_token_at = time.monotonic()
                if frames[-1].type in events.TERMINAL_TYPES:
                    outcome.close_reason = frames[-1].type
                    await response.write_eof()
                    return
            if loop.time() >= next_heartbeat:
                phase = "running" if client.queued_seq > 0 else "queued"
                await response.write(sse.data_frame(sse.json_line(events.heartbeat_payload(phase))))
                next_heartbeat += heartbeat_s
    except (ConnectionResetError, ConnectionError):
        outcome.close_reason = "client_gone"


def _slow_client_frame() -> bytes:
    payload = {
        "type": events.ERROR,
        **events.error_payload(
            "the client reads too slowly; reconnect with Last-Event-ID to resume", "slow_client"
        ),
    }
    return sse.data_frame(sse.json_line(payload))
