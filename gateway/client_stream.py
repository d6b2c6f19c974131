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
from typing import Protocol

from gateway.ticker import HeartbeatTicker
from shared import events
from shared.events import Event, merge_tokens


class DirectWriter(Protocol):
    def write_now(self, frames: list[Event]) -> bool:
        """Write ``frames`` if the socket takes them without waiting; whether it did (all of
        them, or none)."""
        ...


class ClientStream:
    # Slots and a plain list keep an idle stream small: an empty deque alone is 600 bytes, and
    # ten thousand idle streams each hold one of these.
    __slots__ = (
        "_alarm_tick",
        "_buffered_bytes",
        "_flush_due",
        "_frames",
        "_held",
        "_max_buffer_bytes",
        "_queued_seq",
        "_ticker",
        "_waiter",
        "direct_writer",
        "draining",
        "merged_frames",
        "overflowed",
    )

    def __init__(
        self, *, max_buffer_bytes: int, ticker: HeartbeatTicker, after_seq: int = 0
    ) -> None:
        self._max_buffer_bytes = max_buffer_bytes
        # None while empty: an idle stream's buffer is empty for most of its life, and an empty
        # list is 56 bytes.
        self._frames: list[Event] | None = None
        self._buffered_bytes = 0
        self._queued_seq = after_seq
        self._held: list[Event] | None = None
        # The writer's pending wait: one bare future per wait, instead of an Event plus an
        # asyncio.timeout context (the profile showed those costing about a tenth of the
        # gateway's CPU per relayed event).
        self._waiter: asyncio.Future[None] | None = None
        # What wakes a wait at its deadline: the tick this stream is set to ring at (0: none).
        self._ticker = ticker
        self._alarm_tick = 0
        self.overflowed = False
        self.draining = False
        # Set while the relay can be written past (see :meth:`_flush`).
        self.direct_writer: DirectWriter | None = None
        self._flush_due = False
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

    def release_live(self, replayed: list[Event]) -> None:
        held, self._held = self._held or [], None
        for frame in sorted([*replayed, *held], key=lambda f: f.seq):
            self._enqueue(frame)

    def deliver(self, frame: Event) -> None:
        if self._held is not None:
            self._held.append(frame)
        else:
            self._enqueue(frame)

    def close_for_drain(self) -> None:
        """Ask the relay to end this stream (the gateway is shutting down)."""
        self.draining = True
        _wake(self._waiter)

    def _enqueue(self, frame: Event) -> None:
        if frame.seq <= self._queued_seq or self.overflowed:
            return
        self._queued_seq = frame.seq
        if self._frames is None:
            self._frames = [frame]
        else:
            self._frames.append(frame)
        self._buffered_bytes += len(frame.sse)
        if self._buffered_bytes > self._max_buffer_bytes:
            self._merge_pending_tokens()
            # One frame alone (a long answer's `end`) may exceed the budget: it still goes out.
            if self._buffered_bytes > self._max_buffer_bytes and len(self._frames) > 1:
                self.overflowed = True
                self._frames = None
                self._buffered_bytes = 0
                _wake(self._waiter)
                return
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self.direct_writer is None:
            waiter.set_result(None)
        elif not self._flush_due:
            # Once the fanout has handed over everything it read at once (a job's batch arrives
            # together), all of it goes out in one write.
            self._flush_due = True
            waiter.get_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write the buffered frames straight to the socket, or wake the relay to. Waking the
        relay for each event costs the gateway more CPU than the write itself, so while the
        relay waits with nothing pending, the frames go out from here, in order."""
        self._flush_due = False
        waiter, direct = self._waiter, self.direct_writer
        if waiter is None or waiter.done() or not self._frames or direct is None:
            # The relay was woken meanwhile (its heartbeat, a drain) and takes them itself.
            return
        if direct.write_now(self._frames):
            self._frames = []
            self._buffered_bytes = 0
        else:
            waiter.set_result(None)

    def _merge_pending_tokens(self) -> None:
        merged: list[Event] = []
        run: list[Event] = []
        pending = self._frames or []
        for frame in pending:
            if frame.type == events.TOKEN:
                run.append(frame)
                continue
            if run:
                merged.append(run[0] if len(run) == 1 else merge_tokens(run))
                run = []
            merged.append(frame)
        if run:
            merged.append(run[0] if len(run) == 1 else merge_tokens(run))
        self.merged_frames += len(pending) - len(merged)
        self._frames = merged
        self._buffered_bytes = sum(len(frame.sse) for frame in merged)

    def waiter(self, deadline: float) -> asyncio.Future[None] | None:
        """What to await for frames until the loop time ``deadline`` (rounded up to the
        ticker's tick); None when frames are ready now (or the stream must end). The relay
        awaits it directly: a coroutine per wait would be one more frame each idle stream
        holds."""
        if self.ready:
            return None
        tick = self._ticker.tick_of(deadline)
        if tick != self._alarm_tick:
            # Once per deadline, not per wait: the relay waits for the same heartbeat deadline
            # again after each batch of frames.
            self.stop_alarm()
            self._ticker.set(tick, self)
            self._alarm_tick = tick
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def wait(self, deadline: float) -> bool:
        """Wait for frames until the loop time ``deadline``; whether any are ready (or the
        stream must end)."""
        waiter = self.waiter(deadline)
        if waiter is not None:
            await waiter
        return self.ready

    @property
    def ready(self) -> bool:
        """Frames are buffered, or the stream must end."""
        return bool(self._frames) or self.overflowed or self.draining

    def alarm(self, tick: int) -> None:
        """The ticker reached ``tick``: wake the wait whose deadline it is."""
        if tick == self._alarm_tick:
            self._alarm_tick = 0
            _wake(self._waiter)

    def stop_alarm(self) -> None:
        """Take this stream off the ticker (it ended, or its deadline moved)."""
        if self._alarm_tick:
            self._ticker.unset(self._alarm_tick, self)
            self._alarm_tick = 0

    def take(self) -> list[Event]:
        """Everything buffered, oldest first, so it goes out in one write."""
        frames, self._frames = self._frames or [], None
        self._buffered_bytes = 0
        return frames


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
