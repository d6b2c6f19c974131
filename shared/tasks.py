"""Small helpers for owning background tasks."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

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


def start_shared_task(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """Start a task that serves every caller, not the one that happened to start it (a
    listener started by a service's first request): it runs in a context of its own, so that
    what it logs carries none of that caller's bound ids (structlog's contextvars)."""
    return asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())
