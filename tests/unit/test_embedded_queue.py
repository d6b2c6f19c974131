"""The embedded job queue settles deliveries as the quorum queue does: a run handed back as
failed runs again until the delivery limit, then is dead-lettered; one handed back for no fault
of its own is not counted."""

from __future__ import annotations

import asyncio

from shared.embedded import InProcessJobQueue
from shared.jobqueue import JobDelivery
from shared.names import JOB_DELIVERY_LIMIT


async def test_a_job_that_fails_every_run_is_dead_lettered_past_the_delivery_limit() -> None:
    queue = InProcessJobQueue()
    runs: list[bool] = []
    done = asyncio.Event()

    async def fail(delivery: JobDelivery) -> None:
        runs.append(delivery.redelivered)
        await delivery.retry()
        if queue.dead_letters:
            done.set()

    await queue.start_consuming(fail, prefetch=1)
    try:
        queue.put_raw(b"job")
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await queue.close()
    assert runs == [False] + [True] * JOB_DELIVERY_LIMIT
    assert queue.dead_letters == [b"job"]


async def test_a_job_handed_back_for_no_fault_of_its_own_is_not_counted() -> None:
    queue = InProcessJobQueue()
    runs = 0
    done = asyncio.Event()

    async def hand_back_then_fail(delivery: JobDelivery) -> None:
        nonlocal runs
        runs += 1
        # Handed back more times than the limit allows failures, then failing for good.
        if runs <= JOB_DELIVERY_LIMIT + 1:
            await delivery.requeue()
            return
        await delivery.retry()
        if queue.dead_letters:
            done.set()

    await queue.start_consuming(hand_back_then_fail, prefetch=1)
    try:
        queue.put_raw(b"job")
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await queue.close()
    assert runs == 2 * (JOB_DELIVERY_LIMIT + 1)
    assert queue.dead_letters == [b"job"]
