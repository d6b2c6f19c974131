"""The gateway's pub/sub fanout against the real Redis: streams that open together share
SUBSCRIBE commands yet each one returns only once its channel is confirmed, so it misses no
event published after; a leave and a rejoin of one channel keep their order; a listener whose
connection is cut reconnects and hands its streams what they missed; a shutdown with leaves still
queued is quiet."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from gateway.client_stream import ClientStream
from gateway.fanout import EventFanout
from gateway.ticker import HeartbeatTicker
from shared import redis_scripts, replay_log
from shared.events import Event, encode_event
from shared.names import Names
from shared.settings import ConnectionSettings, EventLogSettings
from tests.conftest import REDIS_URL
from tests.support.redis_server import PrivateRedis
from tests.support.tcp_proxy import TcpProxy

STREAMS = 500


@pytest.fixture
async def redis(real_connections: ConnectionSettings) -> AsyncIterator[Redis]:
    assert real_connections.redis_url is not None
    # Blocking: the tests publish from hundreds of tasks at once.
    pool = BlockingConnectionPool.from_url(real_connections.redis_url, max_connections=50)
    client = Redis(connection_pool=pool)
    yield client
    await client.aclose()


@pytest.fixture
async def fanout(redis: Redis, namespace: str) -> AsyncIterator[EventFanout]:
    fanout = EventFanout(redis, Names(namespace), "test", timeout_s=5.0)
    await fanout.start()
    yield fanout
    await fanout.close()


def stream() -> ClientStream:
    return ClientStream(max_buffer_bytes=1 << 20, ticker=HeartbeatTicker(5.0))


async def publish(redis: Redis, names: Names, job_id: str, seq: int) -> int:
    event = Event(job_id=job_id, seq=seq, type="token", payload={"content": f"{seq}"})
    return int(await redis.publish(names.job_channel(job_id), encode_event(event)))


async def frames_of(client: ClientStream, count: int) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(30):
        while len(seqs) < count:
            await client.wait(asyncio.get_running_loop().time() + 60.0)
            seqs += [frame.seq for frame in client.take()]
    return seqs


async def test_many_streams_opening_at_once_each_get_every_event_published_after(
    fanout: EventFanout, redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    # Pairs of streams on one job: the second joins the first's SUBSCRIBE, sent or queued.
    jobs = [f"job-{i // 2}" for i in range(STREAMS)]
    clients = [stream() for _ in jobs]

    async def open_then_publish(job_id: str, client: ClientStream) -> None:
        await fanout.subscribe(job_id, client)
        # Returned only once Redis confirmed the channel: this event reaches the gateway.
        assert await publish(redis, names, job_id, seq=1) == 1

    await asyncio.gather(*map(open_then_publish, jobs, clients))
    assert fanout.subscriber_count == STREAMS
    assert fanout.channel_count == STREAMS // 2
    for job_id in set(jobs):
        assert await publish(redis, names, job_id, seq=2) == 1
    for client in clients:
        assert await frames_of(client, 2) == [1, 2]
    for job_id, client in zip(jobs, clients, strict=True):
        fanout.unsubscribe(job_id, client)
    assert fanout.channel_count == 0


async def test_a_stream_that_rejoins_a_channel_its_last_stream_just_left_gets_its_events(
    fanout: EventFanout, redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    first, second, third = stream(), stream(), stream()
    await fanout.subscribe("job", first)
    # Leave and rejoin in the same turn of the loop: the channel never leaves Redis.
    fanout.unsubscribe("job", first)
    await fanout.subscribe("job", second)
    assert await publish(redis, names, "job", 1) == 1
    assert await frames_of(second, 1) == [1]
    # Leave, let the UNSUBSCRIBE go out, then rejoin: the SUBSCRIBE follows it.
    fanout.unsubscribe("job", second)
    for _ in range(1000):
        if (
            dict(await redis.pubsub_numsub(names.job_channel("job")))[
                names.job_channel("job").encode()
            ]
            == 0
        ):
            break
        await asyncio.sleep(0.01)
    await fanout.subscribe("job", third)
    assert await publish(redis, names, "job", 2) == 1
    assert await frames_of(third, 1) == [2]
    assert first.take() == []


async def test_leaves_and_joins_of_one_channel_in_a_burst_end_subscribed_iff_a_stream_remains(
    fanout: EventFanout, redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    channel = names.job_channel("job")
    for round_ in range(50):
        clients = [stream() for _ in range(3)]
        await asyncio.gather(*(fanout.subscribe("job", client) for client in clients))
        for client in clients:
            fanout.unsubscribe("job", client)
        if round_ % 2:
            await asyncio.sleep(0)
    last = stream()
    await fanout.subscribe("job", last)
    assert await publish(redis, names, "job", 7) == 1
    assert await frames_of(last, 1) == [7]
    fanout.unsubscribe("job", last)
    for _ in range(1000):
        if dict(await redis.pubsub_numsub(channel))[channel.encode()] == 0:
            break
        await asyncio.sleep(0.01)
    assert dict(await redis.pubsub_numsub(channel))[channel.encode()] == 0


async def test_a_listener_whose_connection_is_cut_reconnects_and_backfills_what_it_missed(
    tmp_path: Path,
) -> None:
    """A private Redis, so that cutting every pub/sub connection touches no other client."""
    server = PrivateRedis(tmp_path)
    await server.start()
    redis = Redis.from_url(server.url, protocol=2)
    names = Names("cut")
    fanout = EventFanout(redis, names, "test", timeout_s=5.0)
    appender = replay_log.EventAppender(names, EventLogSettings(), "PUBLISH")

    async def append(seq: int) -> None:
        """As a worker does: into the replay log and onto the channel."""
        raw = encode_event(Event(job_id="job", seq=seq, type="token", payload={"content": "x"}))
        await redis_scripts.run_staged(redis, lambda pipe: appender.stage(pipe, "job", seq, [raw]))

    try:
        await fanout.start()
        client = stream()
        await fanout.subscribe("job", client)
        await append(1)
        assert await frames_of(client, 1) == [1]
        assert await redis.client_kill_filter(_type="pubsub") == 1
        # Published while the listener is away (it waits half a second before reconnecting):
        # only the replay log has it.
        await append(2)
        await append(3)
        assert await frames_of(client, 2) == [2, 3]
        # The channel is live again.
        for _ in range(500):
            if dict(await redis.pubsub_numsub(names.job_channel("job")))[
                names.job_channel("job").encode()
            ]:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the listener did not subscribe the job's channel again")
        await append(4)
        assert await frames_of(client, 1) == [4]
        # A stream that opens now is confirmed by the new connection.
        late = stream()
        await fanout.subscribe("other", late)
        assert await publish(redis, names, "other", 1) == 1
        assert await frames_of(late, 1) == [1]
    finally:
        await fanout.close()
        await redis.aclose()
        server.kill()


@pytest.mark.real
async def test_a_leave_whose_confirmation_the_outage_swallowed_is_not_resubscribed(
    namespace: str,
) -> None:
    """Redis takes an UNSUBSCRIBE, the link drops before its reply arrives: redis-py still lists
    the channel and resubscribes it on reconnecting, and the fanout leaves it again."""
    names = Names(namespace)
    channel, control = names.job_channel("job"), names.gateway_control_channel("test")
    proxy = TcpProxy("127.0.0.1", urlsplit(REDIS_URL).port or 6379)
    await proxy.start()
    redis = Redis.from_url(REDIS_URL)
    through_proxy = Redis.from_url(
        urlunsplit(urlsplit(REDIS_URL)._replace(netloc=f"127.0.0.1:{proxy.port}")), protocol=2
    )
    fanout = EventFanout(through_proxy, names, "test", timeout_s=5.0)

    async def subscribers(name: str) -> int:
        return int(dict(await redis.pubsub_numsub(name))[name.encode()])

    async def until(name: str, count: int) -> None:
        for _ in range(500):
            if await subscribers(name) == count:
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"{name} kept {await subscribers(name)} subscribers, not {count}")

    try:
        await fanout.start()
        client = stream()
        await fanout.subscribe("job", client)
        proxy.drop_replies = True
        fanout.unsubscribe("job", client)
        await until(channel, 0)
        await proxy.cut()
        proxy.drop_replies = False
        await proxy.restore()
        # The listener reconnects, which resubscribes the control channel and the left one in
        # one command; then the left one is left again.
        await until(control, 1)
        await until(channel, 0)
    finally:
        await fanout.close()
        await through_proxy.aclose()
        await redis.aclose()
        await proxy.close()


@pytest.mark.real
async def test_closing_with_many_streams_still_open_leaves_no_task_error(namespace: str) -> None:
    """At shutdown, leaves still queued when the link (and then the Redis client) closes end
    quietly, not as `Task exception was never retrieved`."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    redis = Redis.from_url(REDIS_URL)
    try:
        fanout = EventFanout(redis, Names(namespace), "test", timeout_s=5.0)
        await fanout.start()
        clients = [stream() for _ in range(1000)]
        await asyncio.gather(*(fanout.subscribe(f"job-{i}", c) for i, c in enumerate(clients)))
        # As the gateway shuts down: its handlers end while the fanout, then Redis, close.
        for i, client in enumerate(clients[:500]):
            fanout.unsubscribe(f"job-{i}", client)
        closing = asyncio.create_task(fanout.close())
        for i, client in enumerate(clients[500:], start=500):
            fanout.unsubscribe(f"job-{i}", client)
            if i % 50 == 0:
                await asyncio.sleep(0)
        await closing
        await redis.aclose()
        for i, client in enumerate(clients):
            fanout.unsubscribe(f"job-{i}", client)
        for _ in range(100):
            await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert errors == []


class FailingOnce(ClientStream):
    """A stream whose first delivery meets a bug."""

    failures = 0

    def deliver(self, event: Event) -> None:
        if not self.failures:
            self.failures += 1
            raise RuntimeError("a bug in handing out an event")
        super().deliver(event)


async def test_a_listener_that_meets_an_unexpected_error_starts_again_and_backfills(
    redis: Redis, namespace: str
) -> None:
    # A bug in handing out one event must not end the listener (every stream would go deaf
    # until a restart): it starts again on a fresh connection and backfills from the replay log.
    names = Names(namespace)
    fanout = EventFanout(redis, names, "test", timeout_s=5.0)
    appender = replay_log.EventAppender(names, EventLogSettings(), "PUBLISH")

    async def append(seq: int) -> None:
        raw = encode_event(Event(job_id="job", seq=seq, type="token", payload={"content": "x"}))
        await redis_scripts.run_staged(redis, lambda pipe: appender.stage(pipe, "job", seq, [raw]))

    await fanout.start()
    try:
        client = FailingOnce(max_buffer_bytes=1 << 20, ticker=HeartbeatTicker(5.0))
        await fanout.subscribe("job", client)
        await append(1)
        assert await frames_of(client, 1) == [1]
        assert client.failures == 1
        await append(2)
        assert await frames_of(client, 1) == [2]
    finally:
        await fanout.close()
