"""The embedded job queue settles deliveries as the quorum queue does: a run handed back as
failed runs again until the delivery limit, then is dead-lettered; one handed back for no fault
of its own is not counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shared.embedded import InProcessJobQueue
from shared.jobqueue import JobDelivery
from shared.names import JOB_DELIVERY_LIMIT

# How a run settles its delivery, given which run it is (1 for the first).
Settle = Callable[[JobDelivery, int], Awaitable[None]]


async def runs_until_dead_lettered(settle: Settle) -> tuple[list[bool], list[bytes]]:
    """Each run's ``redelivered``, and the dead letters, once the job is dead-lettered."""
    queue = InProcessJobQueue()
    runs: list[bool] = []
    done = asyncio.Event()

    async def handle(delivery: JobDelivery) -> None:
        runs.append(delivery.redelivered)
        await settle(delivery, len(runs))
        if queue.dead_letters:
            done.set()

    await queue.start_consuming(handle, prefetch=1)
    try:
        queue.put_raw(b"job")
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await queue.close()
    return runs, queue.dead_letters


async def test_a_job_that_fails_every_run_is_dead_lettered_past_the_delivery_limit() -> None:
    async def fail(delivery: JobDelivery, _run: int) -> None:
        await delivery.retry()

    runs, dead = await runs_until_dead_lettered(fail)
    assert runs == [False] + [True] * JOB_DELIVERY_LIMIT
    assert dead == [b"job"]


async def test_a_job_handed_back_for_no_fault_of_its_own_is_not_counted() -> None:
    handed_back = JOB_DELIVERY_LIMIT + 1

    async def hand_back_then_fail(delivery: JobDelivery, run: int) -> None:
        # Handed back more times than the limit allows failures, then failing for good.
        await (delivery.requeue() if run <= handed_back else delivery.retry())

    runs, dead = await runs_until_dead_lettered(hand_back_then_fail)
    assert len(runs) == handed_back + JOB_DELIVERY_LIMIT + 1
    assert dead == [b"job"]
