"""ClientStream's direct writes: while its writer waits, the frames the fanout hands over in one
go are written straight to the socket (the writer's ``write_now``), in one write, instead of
waking the writer; frames keep their seq order and arrive once, whatever the socket refuses."""

from __future__ import annotations

import asyncio

from gateway.client_stream import ClientStream
from gateway.ticker import HeartbeatTicker
from shared.events import Event


class Socket:
    """A writer's side of ``write_now``: each write it took, and whether it takes more."""

    def __init__(self) -> None:
        self.writes: list[list[int]] = []
        self.takes = True

    def write_now(self, frames: list[Event]) -> bool:
        if self.takes:
            self.writes.append([frame.seq for frame in frames])
        return self.takes


def frame(seq: int) -> Event:
    return Event("job", seq, "token", {})


def stream_to(socket: Socket) -> ClientStream:
    stream = ClientStream(max_buffer_bytes=1 << 20, ticker=HeartbeatTicker(60.0))
    stream.direct_writer = socket
    return stream


def park(stream: ClientStream) -> asyncio.Future[None]:
    """As the relay waits for frames."""
    waiter = stream.waiter(asyncio.get_running_loop().time() + 60.0)
    assert waiter is not None
    return waiter


async def a_turn_of_the_loop() -> None:
    await asyncio.sleep(0)


async def test_frames_handed_over_together_go_out_in_one_write_without_waking_the_writer() -> None:
    socket = Socket()
    stream = stream_to(socket)
    waiter = park(stream)
    for seq in (1, 2, 3):
        stream.deliver(frame(seq))
    assert socket.writes == [], "written once the fanout has handed over all it has"
    await a_turn_of_the_loop()
    assert socket.writes == [[1, 2, 3]]
    assert not waiter.done(), "the writer is not woken for frames already written"
    assert stream.take() == []
    stream.deliver(frame(4))
    await a_turn_of_the_loop()
    assert socket.writes == [[1, 2, 3], [4]]
    stream.stop_alarm()


async def test_nothing_is_written_directly_while_the_writer_is_busy() -> None:
    socket = Socket()
    stream = stream_to(socket)
    # Not waiting: the writer is writing, or has not started.
    stream.deliver(frame(1))
    await a_turn_of_the_loop()
    assert socket.writes == []
    assert [f.seq for f in stream.take()] == [1]


async def test_frames_the_socket_refuses_wake_the_writer_with_every_later_one_behind() -> None:
    socket = Socket()
    stream = stream_to(socket)
    waiter = park(stream)
    socket.takes = False
    stream.deliver(frame(1))
    await a_turn_of_the_loop()
    assert waiter.done(), "refused frames wake the writer"
    socket.takes = True
    stream.deliver(frame(2))
    await a_turn_of_the_loop()
    assert socket.writes == []
    assert [f.seq for f in stream.take()] == [1, 2]
    # Waiting again: direct once more.
    park(stream)
    stream.deliver(frame(3))
    await a_turn_of_the_loop()
    assert socket.writes == [[3]]
    stream.stop_alarm()


async def test_a_writer_woken_before_the_write_takes_the_frames_itself() -> None:
    socket = Socket()
    stream = stream_to(socket)
    park(stream)
    stream.deliver(frame(1))
    # Woken first (a drain here; its heartbeat does the same).
    stream.close_for_drain()
    await a_turn_of_the_loop()
    assert socket.writes == []
    assert [f.seq for f in stream.take()] == [1]


async def test_a_seq_already_handed_over_is_not_written_again() -> None:
    socket = Socket()
    stream = stream_to(socket)
    park(stream)
    stream.deliver(frame(1))
    stream.deliver(frame(1))
    # A replay that overlaps what went out live.
    stream.hold_live()
    stream.release_live([frame(1), frame(2)])
    await a_turn_of_the_loop()
    assert socket.writes == [[1, 2]]
    stream.stop_alarm()


async def test_held_frames_wait_for_the_replay_even_when_the_writer_waits() -> None:
    socket = Socket()
    stream = stream_to(socket)
    park(stream)
    stream.hold_live()
    stream.deliver(frame(3))
    await a_turn_of_the_loop()
    assert socket.writes == []
    stream.release_live([frame(1), frame(2)])
    await a_turn_of_the_loop()
    assert socket.writes == [[1, 2, 3]]
    stream.stop_alarm()
