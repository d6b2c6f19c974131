"""One client's view of a job: a bounded buffer of frames between the fanout and the socket.

Frames arrive from two places, the live fanout and the replay log. While the replay log is read,
live frames are held back; afterwards both are merged in seq order and anything already queued
is dropped, so the client sees every seq once, in order.
"""

from __future__ import annotations

import asyncio

from gateway.frames import Frame


class ClientStream:
    # Slots and a plain list keep an idle stream small: an empty deque alone is 600 bytes, and
    # ten thousand idle streams each hold one of these.
    __slots__ = (
        "_buffered_bytes",
        "_frames",
        "_held",
        "_max_buffer_bytes",
        "_queued_seq",
        "_waiter",
        "overflowed",
    )

    def __init__(self, *, max_buffer_bytes: int, after_seq: int = 0) -> None:
        self._max_buffer_bytes = max_buffer_bytes
        self._frames: list[Frame] = []
        self._buffered_bytes = 0
        self._queued_seq = after_seq
        self._held: list[Frame] | None = None
        # The writer's pending wait: one bare future per wait, instead of an Event plus an
        # asyncio.timeout context (the profile showed those costing about a tenth of the
        # gateway's CPU per relayed event).
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    @property
    def queued_seq(self) -> int:
        """The highest seq handed to this client's buffer so far."""
        return self._queued_seq

    def hold_live(self) -> None:
        """Hold live frames back until :meth:`release_live` (while the replay log is read)."""
        self._held = []

    def release_live(self, replayed: list[Frame]) -> None:
        held, self._held = self._held or [], None
        for frame in sorted([*replayed, *held], key=lambda f: f.seq):
            self._enqueue(frame)

    def deliver(self, frame: Frame) -> None:
        if self._held is not None:
            self._held.append(frame)
        else:
            self._enqueue(frame)

    def _enqueue(self, frame: Frame) -> None:
        if frame.seq <= self._queued_seq:
            return
        self._queued_seq = frame.seq
        self._frames.append(frame)
        self._buffered_bytes += len(frame.wire)
        if self._buffered_bytes > self._max_buffer_bytes:
            self.overflowed = True
        _wake(self._waiter)

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for frames; whether any are ready."""
        if self._frames:
            return True
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return bool(self._frames)

    def take(self) -> list[Frame]:
        """Everything buffered, oldest first, so it goes out in one write."""
        frames, self._frames = self._frames, []
        self._buffered_bytes = 0
        return frames


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
