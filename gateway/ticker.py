"""One timer per tick for every stream's next heartbeat, instead of one per stream.

An idle stream spends its life waiting for its next heartbeat. With a timer of its own per wait
(a ``TimerHandle``, and under uvloop a libuv timer behind it), ten thousand idle streams hold ten
thousand timers. Here the streams whose heartbeat falls due within the same tick share one:
the deadline is rounded up to the tick, so a heartbeat goes out at most one tick late, and
since the interval is a whole number of ticks, never later than that however long the stream
lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Protocol

# Ticks per heartbeat interval: a heartbeat is at most a fiftieth of the interval late (0.1 s
# at 5 s), and at most fifty timers are armed for all of a gateway's streams.
TICKS_PER_HEARTBEAT = 50


class Alarmed(Protocol):
    def alarm(self, tick: int) -> None: ...


class HeartbeatTicker:
    """Rings every stream whose deadline falls in a tick once that tick is reached."""

    __slots__ = ("_due", "_tick_s")

    def __init__(self, heartbeat_s: float) -> None:
        self._tick_s = heartbeat_s / TICKS_PER_HEARTBEAT
        # Per tick, the streams to ring; each tick with any has one timer armed.
        self._due: dict[int, list[Alarmed]] = {}

    def tick_of(self, deadline: float) -> int:
        """The tick at which a wait for the loop time ``deadline`` is woken."""
        return math.ceil(deadline / self._tick_s)

    def set(self, tick: int, stream: Alarmed) -> None:
        """Ring ``stream`` (:meth:`Alarmed.alarm`) at ``tick``."""
        due = self._due.get(tick)
        if due is None:
            self._due[tick] = due = []
            asyncio.get_running_loop().call_at(tick * self._tick_s, self._ring, tick)
        due.append(stream)

    def unset(self, tick: int, stream: Alarmed) -> None:
        """Do not ring ``stream`` at ``tick`` (it ended, or its deadline moved)."""
        due = self._due.get(tick)
        if due is not None:
            with contextlib.suppress(ValueError):
                due.remove(stream)

    def _ring(self, tick: int) -> None:
        for stream in self._due.pop(tick, ()):
            stream.alarm(tick)
