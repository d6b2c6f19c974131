"""A run is ended as soon as its `end` is queued. Regression: the flag was set only once the
emit returned, and an emit that waits for a full queue to flush could be cancelled (a stop, or
nobody watching) in between; the worker then emitted a second `end`, cancelled, after the first."""

from __future__ import annotations

import asyncio
from typing import Any

from shared import events
from shared.job import Job
from worker.job_run import JobRun


class _FlushingLog:
    """Stands in for the job's event log: `end` is queued at once, then its emit waits, as one
    does when the queue is full and must flush to Redis first."""

    last_seq = 0

    def __init__(self) -> None:
        self.queued: list[str] = []
        self.flushed = asyncio.Event()

    async def emit(self, event_type: str, payload: dict[str, Any], **_: Any) -> None:
        self.queued.append(event_type)
        await self.flushed.wait()

    def read_along(self, stage: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()


async def test_a_run_is_ended_while_its_end_waits_for_the_queue_to_flush() -> None:
    log = _FlushingLog()
    job = Job(job_id="job", session_id="s", message_id="m", user_id="u", pipeline="echo", text="hi")
    run = JobRun(job=job, log=log, messages=None)  # type: ignore[arg-type]
    ending = asyncio.create_task(run.emit_end(events.FINISH_STOP))
    await asyncio.sleep(0)
    assert log.queued == [events.END]
    assert run.ended
    ending.cancel()
    await asyncio.gather(ending, return_exceptions=True)
    assert run.ended
