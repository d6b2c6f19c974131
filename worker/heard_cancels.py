"""What a worker's cancel listener has heard: the cancels of jobs it is not running (yet).

A job cancelled while it waits in the queue was broadcast on the cancel channel before any
worker watched it, and its flag in Redis says so. Reading that flag costs the job's first round
trip a place ahead of its first events. But a listener whose subscription has been live since
before the job was created heard that broadcast: if it remembers it, the job needs no flag read.

The memory is bounded: past ``capacity`` cancels the oldest are forgotten, and from then on it
is complete only for the jobs created after the last forgotten one was heard. A listener that
lost its subscription has heard nothing in the meantime: the memory is complete again only for
jobs created after it is live once more. A job the memory does not cover reads its flag.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

DEFAULT_CAPACITY = 10_000


@dataclass
class HeardCancels:
    # A job's creation time is the gateway's clock, the listener's times are this worker's: a
    # job counts as created after a moment only when it was created this long after it, so that
    # hosts whose clocks disagree by less than this never skip a flag read they needed.
    clock_skew_margin_ms: int
    capacity: int = DEFAULT_CAPACITY
    # The job ids heard, in the order heard, with when (this worker's clock, ms).
    _heard_at_ms: OrderedDict[str, int] = field(default_factory=OrderedDict, init=False, repr=False)
    # Every cancel broadcast since this moment is remembered; None while not listening.
    _complete_since_ms: int | None = field(default=None, init=False)

    def listening(self, now_ms: int) -> None:
        """The subscription is live (again): what is broadcast from now on is heard."""
        self._complete_since_ms = now_ms

    def deaf(self) -> None:
        """The subscription is lost: broadcasts may go unheard until :meth:`listening`."""
        self._complete_since_ms = None

    def heard(self, job_id: str, now_ms: int) -> None:
        self._heard_at_ms[job_id] = now_ms
        self._heard_at_ms.move_to_end(job_id)
        while len(self._heard_at_ms) > self.capacity:
            _, forgotten_at_ms = self._heard_at_ms.popitem(last=False)
            if self._complete_since_ms is not None:
                self._complete_since_ms = max(self._complete_since_ms, forgotten_at_ms)

    def take(self, job_id: str) -> bool:
        """Whether ``job_id``'s cancel was heard; it is forgotten once taken."""
        return self._heard_at_ms.pop(job_id, None) is not None

    def covers(self, created_at_ms: int) -> bool:
        """Whether every cancel of a job created at ``created_at_ms`` (the gateway's clock) was
        heard, so that :meth:`take` answers for it."""
        since_ms = self._complete_since_ms
        return since_ms is not None and created_at_ms > since_ms + self.clock_skew_margin_ms
