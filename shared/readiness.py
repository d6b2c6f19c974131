"""Readiness checks both services answer with: a check that fails, raises or takes longer than
the connect timeout counts as down, so a probe never hangs on a dead server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from redis.exceptions import RedisError


async def answers(check: Awaitable[bool], timeout_s: float) -> bool:
    """Whether ``check`` came back true within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await check
    except (TimeoutError, RedisError, OSError):
        return False
