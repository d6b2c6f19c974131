"""ClientStream's wait, which the relay's writer loop blocks on between batches: it wakes for a
frame, times out without one, and never swallows the cancellation of the writer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.client_stream import ClientStream
from gateway.frames import Frame


def frame(seq: int) -> Frame:
    return Frame(seq, "token", {}, b"id: %d\ndata: {}\n\n" % seq)


async def test_wait_returns_at_once_when_frames_are_buffered() -> None:
    stream = ClientStream(max_buffer_bytes=1024)
    stream.deliver(frame(1))
    assert await stream.wait(60) is True
    assert [f.seq for f in stream.take()] == [1]


async def test_wait_wakes_when_a_frame_is_delivered() -> None:
    stream = ClientStream(max_buffer_bytes=1024)
    waiting = asyncio.create_task(stream.wait(60))
    await asyncio.sleep(0)
    assert not waiting.done()
    stream.deliver(frame(1))
    assert await waiting is True


async def test_wait_times_out_without_frames() -> None:
    stream = ClientStream(max_buffer_bytes=1024)
    assert await stream.wait(0.01) is False
    # A frame delivered after the timeout is kept for the next wait.
    stream.deliver(frame(1))
    assert await stream.wait(0.01) is True


async def test_cancelling_the_writer_propagates_and_a_later_frame_is_still_kept() -> None:
    stream = ClientStream(max_buffer_bytes=1024)
    waiting = asyncio.create_task(stream.wait(60))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    stream.deliver(frame(1))
    assert [f.seq for f in stream.take()] == [1]


async def test_an_overflowing_client_wakes_its_writer() -> None:
    stream = ClientStream(max_buffer_bytes=1024)
    waiting = asyncio.create_task(stream.wait(60))
    await asyncio.sleep(0)
    # Two frames that are not tokens (nothing to merge) and together exceed the budget.
    stream.deliver(Frame(1, "progress", {}, b"x" * 800))
    stream.deliver(Frame(2, "progress", {}, b"x" * 800))
    assert await waiting is True and stream.overflowed
