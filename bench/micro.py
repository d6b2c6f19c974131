"""In-process timings of the relay's hot path, one piece at a time: steadier than the end-to-end
figures on a shared machine, so each relay change's gain shows here first. Each figure is the
process CPU time per operation, in microseconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.client_stream import ClientStream
from gateway.fanout import Watchers
from gateway.ticker import HeartbeatTicker
from shared import events, sse
from shared.events import Event, decode_event, encode_event
from shared.names import Names

OPS = 50_000


def _per_op_us(run: Callable[[], object], ops: int) -> float:
    started = time.process_time()
    run()
    return round((time.process_time() - started) / ops * 1e6, 3)


def _raw_token(seq: int) -> bytes:
    return encode_event(Event("job", seq, events.TOKEN, events.token_payload(" word")))


async def client_stream_cycle(ops: int) -> float:
    """One frame through a client's buffer: deliver, wake the writer, take."""
    stream = ClientStream(max_buffer_bytes=1 << 30, ticker=HeartbeatTicker(15.0))
    loop = asyncio.get_running_loop()
    frames = [Event("job", i + 1, events.TOKEN, {}) for i in range(ops)]
    # Encoded before the clock starts: this figure is the buffer's alone (decode_and_frame
    # times the encoding).
    _ = [frame.sse for frame in frames]

    async def writer() -> None:
        taken = 0
        while taken < ops:
            if await stream.wait(loop.time() + 15.0):
                taken += len(stream.take())

    task = asyncio.create_task(writer())
    started = time.process_time()
    for frame in frames:
        # Yield each time, so that every frame is a separate wake as at low event rates.
        await asyncio.sleep(0)
        stream.deliver(frame)
    await task
    return round((time.process_time() - started) / ops * 1e6, 3)


def dispatch(ops: int, subscribers: int) -> float:
    """One pub/sub message through the fanout to ``subscribers`` streams on its channel."""
    channel = Names("micro").job_channel("job")
    watchers = Watchers()
    ticker = HeartbeatTicker(15.0)
    for _ in range(subscribers):
        watchers.add(channel, ClientStream(max_buffer_bytes=1 << 30, ticker=ticker))
    raw_channel = channel.encode()
    raws = [_raw_token(i + 1) for i in range(ops)]

    def run() -> None:
        for raw in raws:
            watchers.deliver(raw_channel, raw)

    return _per_op_us(run, ops)


def decode_and_frame(ops: int) -> float:
    """Decoding one event from msgpack and encoding its SSE frame (once for all clients)."""
    raws = [_raw_token(i + 1) for i in range(ops)]
    return _per_op_us(lambda: [decode_event(raw).sse for raw in raws], ops)


def heartbeat_frame(ops: int) -> float:
    """One heartbeat frame (written per client per heartbeat period)."""

    def run() -> None:
        for _ in range(ops):
            sse.data_frame(sse.json_line(events.heartbeat_payload("queued")))

    return _per_op_us(run, ops)


def reference_loop(ops: int) -> float:
    """A thousand turns of a bare Python loop, no chatstream code: the machine's speed on the
    day. The same code's CPU figures moved by a factor of three from one day to another on
    this shared VM; set against this figure, runs of different days can be compared."""

    def run() -> None:
        total = 0
        for i in range(ops * 1000):
            total += i

    return _per_op_us(run, ops)


async def run_all(ops: int = OPS) -> dict[str, float]:
    return {
        "client_stream_cycle_us": await client_stream_cycle(ops),
        "dispatch_to_1_stream_us": dispatch(ops, 1),
        "dispatch_to_100_streams_us": dispatch(max(1, ops // 100), 100),
        "decode_and_frame_us": decode_and_frame(ops),
        "heartbeat_frame_us": heartbeat_frame(ops),
        "reference_loop_us": reference_loop(max(1, ops // 10)),
    }
