"""ClientStream's direct writes: while its writer waits with nothing buffered, a frame goes
straight to the socket (the writer's ``write_now``) instead of waking the writer; frames keep
their seq order and arrive once, whatever the socket refuses."""

from __future__ import annotations

import asyncio

from gateway.client_stream import ClientStream
from gateway.frames import Frame
from gateway.ticker import HeartbeatTicker


class Socket:
    """A writer's side of ``write_now``: what it took, and whether it takes more."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.takes = True

    def write_now(self, frame: Frame) -> bool:
        if self.takes:
            self.written.append(frame.seq)
        return self.takes


def frame(seq: int, kind: str = "token") -> Frame:
    return Frame(seq, kind, {}, b"id: %d\ndata: {}\n\n" % seq)


def stream_to(socket: Socket) -> ClientStream:
    stream = ClientStream(max_buffer_bytes=1 << 20, ticker=HeartbeatTicker(60.0))
    stream.direct_writer = socket
    return stream


def park(stream: ClientStream) -> asyncio.Future[None]:
    waiter = stream.waiter(asyncio.get_running_loop().time() + 60.0)
    assert waiter is not None
    return waiter


async def test_a_frame_for_a_waiting_writer_goes_straight_to_the_socket() -> None:
    socket = Socket()
    stream = stream_to(socket)
    waiter = park(stream)
    stream.deliver(frame(1))
    stream.deliver(frame(2))
    assert socket.written == [1, 2]
    assert not waiter.done(), "the writer is not woken for frames already written"
    assert stream.take() == []
    assert stream.queued_seq == 2
    stream.stop_alarm()


async def test_nothing_is_written_directly_while_the_writer_is_busy() -> None:
    socket = Socket()
    stream = stream_to(socket)
    # Not waiting: the writer is writing, or has not started.
    stream.deliver(frame(1))
    assert socket.written == []
    assert [f.seq for f in stream.take()] == [1]


async def test_once_a_frame_is_buffered_the_later_ones_queue_behind_it() -> None:
    socket = Socket()
    stream = stream_to(socket)
    waiter = park(stream)
    socket.takes = False
    stream.deliver(frame(1))
    assert waiter.done(), "a refused frame wakes the writer"
    socket.takes = True
    stream.deliver(frame(2))
    stream.deliver(frame(3))
    assert socket.written == []
    assert [f.seq for f in stream.take()] == [1, 2, 3]
    # Waiting again with nothing buffered: direct once more.
    park(stream)
    stream.deliver(frame(4))
    assert socket.written == [4]
    stream.stop_alarm()


async def test_a_seq_already_written_is_not_written_again() -> None:
    socket = Socket()
    stream = stream_to(socket)
    park(stream)
    stream.deliver(frame(1))
    stream.deliver(frame(1))
    # A replay that overlaps what went out live.
    stream.hold_live()
    stream.release_live([frame(1), frame(2)])
    assert socket.written == [1, 2]
    stream.stop_alarm()


async def test_held_frames_wait_for_the_replay_even_when_the_writer_waits() -> None:
    socket = Socket()
    stream = stream_to(socket)
    park(stream)
    stream.hold_live()
    stream.deliver(frame(3))
    assert socket.written == []
    stream.release_live([frame(1), frame(2)])
    assert socket.written == [1, 2, 3]
    stream.stop_alarm()
