"""cancel_and_wait ends a task even when the task swallows a cancellation (as Python 3.11's
``asyncio.wait_for`` can when a read completes at the same moment)."""

from __future__ import annotations

import asyncio

from shared.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()
    assert swallowed == 2


async def test_a_finished_or_missing_task_is_left_alone() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await cancel_and_wait(done)
    await cancel_and_wait(None)
    assert done.done() and not done.cancelled()
