"""Small helpers for owning background tasks."""

from __future__ import annotations

import asyncio
from typing import Any

# How long a cancelled task has to finish before it is cancelled again.
RECANCEL_AFTER_S = 0.1


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait until it has finished, without swallowing our own cancellation
    (``asyncio.wait`` never raises the awaited task's CancelledError into the caller).

    The cancellation is repeated until the task ends: on Python 3.11, ``asyncio.wait_for``
    (which client libraries use inside their reads) drops a cancellation that arrives just as
    the awaited read completes, and the task would go on waiting for its next message."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=RECANCEL_AFTER_S)
