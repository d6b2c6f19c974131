"""Small helpers for owning background tasks."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait until it has finished, without swallowing our own cancellation
    (``asyncio.wait`` never raises the awaited task's CancelledError into the caller)."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task])
