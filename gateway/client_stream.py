"""One client's view of a job: a bounded buffer of frames between the fanout and the socket.

Frames arrive from two places, the live fanout and the replay log. While the replay log is read,
live frames are held back; afterwards both are merged in seq order and anything already queued
is dropped, so the client sees every seq once, in order.

A client that reads slower than the job writes first has its pending tokens merged into fewer,
larger frames; if it is still over its budget after that, it is marked overflowed and gets
nothing more (the relay closes it with an error it can resume from). Memory stays bounded.
"""

from __future__ import annotations

import asyncio
from collections import deque

from gateway.frames import Frame, merge_tokens
from shared import events


class ClientStream:
    def __init__(self, *, max_buffer_bytes: int, after_seq: int = 0) -> None:
        self._max_buffer_bytes = max_buffer_bytes
        self._frames: deque[Frame] = deque()
        self._buffered_bytes = 0
        self._queued_seq = after_seq
        self._held: list[Frame] | None = None
        self._ready = asyncio.Event()
        self.overflowed = False
        self.draining = False
        self.merged_frames = 0

    @property
    def queued_seq(self) -> int:
        """The highest seq handed to this client's buffer so far."""
        return self._queued_seq

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

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
        if frame.seq <= self._queued_seq or self.overflowed:
            return
        self._queued_seq = frame.seq
        self._frames.append(frame)
        self._buffered_bytes += len(frame.wire)
        if self._buffered_bytes > self._max_buffer_bytes:
            self._merge_pending_tokens()
            # One frame alone (a long answer's `end`) may exceed the budget: it still goes out.
            if self._buffered_bytes > self._max_buffer_bytes and len(self._frames) > 1:
                self.overflowed = True
                self._frames.clear()
                self._buffered_bytes = 0
        self._ready.set()

    def _merge_pending_tokens(self) -> None:
        merged: deque[Frame] = deque()
        run: list[Frame] = []
        for frame in self._frames:
            if frame.type == events.TOKEN:
                run.append(frame)
                continue
            if run:
                merged.append(run[0] if len(run) == 1 else merge_tokens(run))
                run = []
            merged.append(frame)
        if run:
            merged.append(run[0] if len(run) == 1 else merge_tokens(run))
        self.merged_frames += len(self._frames) - len(merged)
        self._frames = merged
        self._buffered_bytes = sum(len(frame.wire) for frame in merged)

    def close_for_drain(self) -> None:
        """Ask the relay to end this stream (the gateway is shutting down)."""
        self.draining = True
        self._ready.set()

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for frames; whether any are ready (or the stream must end)."""
        if not self._frames and not self.overflowed and not self.draining:
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return False
        return True

    def take(self) -> list[Frame]:
        """Everything buffered, oldest first, so it goes out in one write."""
        frames = list(self._frames)
        self._frames.clear()
        self._buffered_bytes = 0
        return frames
