"""A worker's cancel listener whose link went silent without closing finds out, comes back on a
fresh connection, and reads the running jobs' flags: a cancel broadcast while it was deaf still
stops the job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from shared.pubsub_listener import LIVENESS_S
from shared.settings import ConnectionSettings
from tests.support.tcp_proxy import TcpProxy
from worker.cancellation import CancelSignals

# Finding a silent link takes two liveness periods, coming back a retry and a confirmation: far
# more than that is a listener that does not recover.
RECOVERY_BOUND_S = 10 * LIVENESS_S


@pytest.fixture
async def redis_proxy(real_connections: ConnectionSettings) -> AsyncIterator[TcpProxy]:
    target = urlsplit(real_connections.redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_a_cancel_broadcast_while_the_link_was_silent_stops_the_job_once_it_is_back(
    real_connections: ConnectionSettings, redis_proxy: TcpProxy
) -> None:
    assert real_connections.redis_url is not None
    target = urlsplit(real_connections.redis_url)
    names = real_connections.names
    through_proxy = Redis.from_url(f"redis://127.0.0.1:{redis_proxy.port}{target.path}")
    direct = Redis.from_url(real_connections.redis_url)
    signals = CancelSignals(through_proxy, names, disconnect_grace_s=30.0)
    await signals.start()
    try:
        cancellation = signals.watch("job-1")
        redis_proxy.freeze()  # Redis's host vanishes: nothing closes, nothing comes through
        # As a gateway cancels: the flag, then the broadcast, which the frozen link swallows.
        await direct.set(names.job_cancel_flag("job-1"), 1)
        await direct.publish(names.cancel_channel, "job-1")
        deadline = time.monotonic() + RECOVERY_BOUND_S
        while not cancellation.requested:
            assert time.monotonic() < deadline, "the listener never came back"
            await asyncio.sleep(0.05)
        assert cancellation.reason == "requested"
    finally:
        await signals.close()
        await through_proxy.aclose()
        await direct.aclose()
