"""cancel_and_wait ends a task even when the task swallows a cancellation (as Python 3.11's
``asyncio.wait_for`` can when a read completes at the same moment); a shared task logs none of
the ids its starter had bound."""

from __future__ import annotations

import asyncio

import structlog

from shared.tasks import cancel_and_wait, start_shared_task


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


async def test_a_shared_task_carries_none_of_its_starters_log_context() -> None:
    structlog.contextvars.bind_contextvars(request_id="r1", user_id="alice")
    try:

        async def bound() -> dict[str, object]:
            return structlog.contextvars.get_contextvars()

        assert await start_shared_task(bound(), "listener") == {}
        assert await asyncio.create_task(bound()) == {"request_id": "r1", "user_id": "alice"}
    finally:
        structlog.contextvars.clear_contextvars()
