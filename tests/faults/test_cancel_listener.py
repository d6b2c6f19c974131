"""A worker's cancel listener vouches for the jobs created while it listens (they need no flag
read) only while its link to Redis is alive, including a link that went silent without closing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from shared.job import Job
from shared.settings import ConnectionSettings
from tests.support.tcp_proxy import TcpProxy
from worker.cancellation import LIVENESS_S, CancelSignals

# Finding a silent link takes two liveness periods, coming back a retry and a confirmation: far
# more than that is a listener that does not recover.
RECOVERY_BOUND_S = 10 * LIVENESS_S


def job_created_now() -> Job:
    return Job(
        job_id="job-1",
        session_id="session-1",
        message_id="message-1",
        user_id="alice",
        text="hello",
        pipeline="echo",
        created_at_ms=int(time.time() * 1000),
    )


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + RECOVERY_BOUND_S
    while not condition():
        assert time.monotonic() < deadline, "the listener never got there"
        await asyncio.sleep(0.05)


@pytest.fixture
async def redis_proxy(real_connections: ConnectionSettings) -> AsyncIterator[TcpProxy]:
    target = urlsplit(real_connections.redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_a_listener_whose_link_went_silent_vouches_for_no_job_until_it_is_back(
    real_connections: ConnectionSettings, redis_proxy: TcpProxy
) -> None:
    target = urlsplit(real_connections.redis_url)
    redis = Redis.from_url(f"redis://127.0.0.1:{redis_proxy.port}{target.path}")
    signals = CancelSignals(
        redis, real_connections.names, disconnect_grace_s=30.0, clock_skew_margin_ms=0
    )
    await signals.start()
    try:
        await until(lambda: signals.heard_every_cancel_of(job_created_now()))
        redis_proxy.drop_replies = True  # Redis's side goes quiet; nothing closes
        await until(lambda: not signals.heard_every_cancel_of(job_created_now()))
        redis_proxy.drop_replies = False
        await until(lambda: signals.heard_every_cancel_of(job_created_now()))
    finally:
        await signals.close()
        await redis.aclose()
