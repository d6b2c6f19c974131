"""ClientStream's wait, which the relay's writer loop blocks on between batches: it wakes for a
frame, at its deadline (through the heartbeat ticker) without one, and never swallows the
cancellation of the writer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.client_stream import ClientStream
from gateway.ticker import TICKS_PER_HEARTBEAT, HeartbeatTicker
from shared.events import Event

HEARTBEAT_S = 0.5
TICK_S = HEARTBEAT_S / TICKS_PER_HEARTBEAT


def frame(seq: int) -> Event:
    return Event("job", seq, "token", {})


def in_s(delay_s: float) -> float:
    return asyncio.get_running_loop().time() + delay_s


def new_stream(ticker: HeartbeatTicker | None = None) -> ClientStream:
    return ClientStream(max_buffer_bytes=1024, ticker=ticker or HeartbeatTicker(HEARTBEAT_S))


async def test_wait_returns_at_once_when_frames_are_buffered() -> None:
    stream = new_stream()
    stream.deliver(frame(1))
    assert await stream.wait(in_s(60)) is True
    assert [f.seq for f in stream.take()] == [1]


async def test_wait_wakes_when_a_frame_is_delivered() -> None:
    stream = new_stream()
    waiting = asyncio.create_task(stream.wait(in_s(60)))
    await asyncio.sleep(0)
    assert not waiting.done()
    stream.deliver(frame(1))
    assert await waiting is True
    stream.stop_alarm()


async def test_wait_ends_at_its_deadline_without_frames() -> None:
    stream = new_stream()
    loop = asyncio.get_running_loop()
    deadline = in_s(0.05)
    assert await stream.wait(deadline) is False
    # Woken at the deadline's tick: not before the deadline, at most a tick after it.
    assert deadline <= loop.time() + 0.002
    assert loop.time() < deadline + TICK_S + 0.05
    # A frame delivered after the deadline is kept for the next wait.
    stream.deliver(frame(1))
    assert await stream.wait(in_s(0.05)) is True


async def test_streams_due_in_one_tick_share_one_timer() -> None:
    ticker = HeartbeatTicker(HEARTBEAT_S)
    streams = [new_stream(ticker) for _ in range(100)]
    deadline = in_s(0.05)
    waits = [asyncio.create_task(stream.wait(deadline)) for stream in streams]
    await asyncio.sleep(0)
    assert len(ticker._due) == 1
    assert await asyncio.gather(*waits) == [False] * 100
    assert not ticker._due


async def test_waiting_again_for_the_same_deadline_sets_no_second_alarm() -> None:
    ticker = HeartbeatTicker(HEARTBEAT_S)
    stream = new_stream(ticker)
    deadline = in_s(0.2)
    for seq in (1, 2, 3):
        waiting = asyncio.create_task(stream.wait(deadline))
        await asyncio.sleep(0)
        stream.deliver(frame(seq))
        assert await waiting is True
        stream.take()
    assert [len(due) for due in ticker._due.values()] == [1]
    stream.stop_alarm()
    assert [len(due) for due in ticker._due.values()] == [0]


async def test_cancelling_the_writer_propagates_and_a_later_frame_is_still_kept() -> None:
    stream = new_stream()
    waiting = asyncio.create_task(stream.wait(in_s(60)))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    stream.deliver(frame(1))
    assert [f.seq for f in stream.take()] == [1]
    stream.stop_alarm()


async def test_an_overflowing_client_wakes_its_writer() -> None:
    stream = new_stream()
    waiting = asyncio.create_task(stream.wait(in_s(60)))
    await asyncio.sleep(0)
    # Two frames that are not tokens (nothing to merge) and together exceed the budget.
    stream.deliver(Event("job", 1, "progress", {"details": "x" * 800}))
    stream.deliver(Event("job", 2, "progress", {"details": "x" * 800}))
    assert await waiting is True and stream.overflowed
    stream.stop_alarm()
