"""Sharded pub/sub on a real Redis Cluster (3 primaries, 3 replicas, started for this module):
one link per node that holds channels, each closed with its last channel; a join that meets
MOVED goes to the slot's new owner and costs the link nothing; a stream whose slot is moved
mid-stream gets every event once and in order, and only its channel is backfilled, as a link
that is cut backfills only its own node's streams; the worker hears cancels on the sharded
cancel channel, and counts a job's audience on the node that owns its slot even when its own
slot map is stale.

Every test leaves the cluster as it found it (a moved slot is moved back)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster
from structlog.testing import capture_logs

from gateway.fanout import EventFanout
from launcher.local_redis import LocalRedisCluster, running
from shared.ids import new_job_id
from shared.names import Names
from shared.shard_listener import ShardedListener
from tests.support.redis_cluster import (
    Collector,
    Publisher,
    cluster_client,
    cluster_names,
    jobs_on_each_primary,
    move_of,
    owner_of,
    pubsub_links,
    server_of,
    until,
)
from worker.cancellation import CancelSignals, count_watchers


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Starting a cluster takes seconds: the module shares one."""
    started = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    with running(started):
        yield started


@pytest.fixture
async def client(cluster: LocalRedisCluster, namespace: str) -> AsyncIterator[RedisCluster]:
    client = cluster_client(cluster, namespace)
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture
def names(cluster: LocalRedisCluster, namespace: str) -> Names:
    return cluster_names(cluster, namespace)


@pytest.fixture
async def owner(client: RedisCluster) -> AsyncIterator[Owner]:
    owner = Owner(client)
    await owner.listener.start()
    yield owner
    await owner.listener.close()


class Owner:
    """A sharded listener, and what its owner sees: the messages, and the channels live
    again."""

    def __init__(self, client: RedisCluster) -> None:
        self.messages: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
        self.live: list[str] = []
        self.listener = ShardedListener(
            client, on_message=self.on_message, on_live=self.on_live, log_area="test"
        )

    def on_message(self, channel: bytes, data: bytes) -> None:
        self.messages.put_nowait((channel, data))

    def on_live(self, channels: Collection[str]) -> None:
        self.live += channels

    async def heard(self, channel: str, data: bytes) -> None:
        async with asyncio.timeout(10):
            assert await self.messages.get() == (channel.encode(), data)


async def test_one_link_per_node_holding_channels_each_closed_with_its_last_channel(
    cluster: LocalRedisCluster, client: RedisCluster, names: Names, owner: Owner
) -> None:
    listener = owner.listener
    channels = [names.job_channel(job) for job in jobs_on_each_primary(client, names, 20, "links")]
    await asyncio.gather(*map(listener.subscribe, channels))
    by_node: defaultdict[str, list[str]] = defaultdict(list)
    for channel in channels:
        by_node[owner_of(client, channel)].append(channel)
    assert len(by_node) == 3
    assert listener.linked_nodes == set(by_node)
    for node_name in by_node:
        assert pubsub_links(server_of(cluster, node_name)) == 1
    for channel in channels:
        # Confirmed: each is heard by the one link of its node.
        assert await client.spublish(channel, channel) == 1
    heard = {await owner.messages.get() for _ in channels}
    assert heard == {(channel.encode(), channel.encode()) for channel in channels}

    (first, leaving), *staying = by_node.items()
    with capture_logs() as logs:
        for channel in leaving:
            listener.unsubscribe(channel)
        await until(lambda: pubsub_links(server_of(cluster, first)) == 0, "closed the link")
        for node_name, _ in staying:
            assert pubsub_links(server_of(cluster, node_name)) == 1
        for _, rest in staying:
            for channel in rest:
                listener.unsubscribe(channel)
        servers = [server_of(cluster, node_name) for node_name in by_node]
        await until(lambda: all(pubsub_links(server) == 0 for server in servers), "closed")
    assert listener.linked_nodes == set()
    # A link closed with its last channel fails nothing: no warning per stream that ends.
    assert [line for line in logs if line["log_level"] != "info"] == []


async def test_a_join_refused_as_moved_goes_to_the_new_owner_and_the_link_stays(
    cluster: LocalRedisCluster, client: RedisCluster, names: Names, owner: Owner
) -> None:
    listener = owner.listener
    staying, moving = _two_channels_on_one_node(client, names)
    move = move_of(client, moving)
    try:
        await listener.subscribe(staying)
        source = server_of(cluster, move.source)
        with source.client() as admin:
            [link_before] = admin.client_list(_type="pubsub")
        # The slot moves behind the client's back: its map still names the source.
        await asyncio.to_thread(move.run)
        await listener.subscribe(moving)
        assert listener.linked_nodes == {move.source, move.target}
        assert await client.spublish(moving, b"moved") == 1
        await owner.heard(moving, b"moved")
        # The refusal failed only its own command: the source's link is the same one.
        assert await client.spublish(staying, b"stayed") == 1
        await owner.heard(staying, b"stayed")
        with source.client() as admin:
            [link_after] = admin.client_list(_type="pubsub")
        assert link_after["id"] == link_before["id"]
        # Never subscribed before: nothing to catch up on.
        assert owner.live == []
    finally:
        await asyncio.to_thread(move.undo)


def _two_channels_on_one_node(client: RedisCluster, names: Names) -> tuple[str, str]:
    jobs = jobs_on_each_primary(client, names, 9, "one-node")
    first, *others = (names.job_channel(job) for job in jobs)
    node = owner_of(client, first)
    return first, next(channel for channel in others if owner_of(client, channel) == node)


async def test_a_stream_whose_slot_moves_mid_stream_gets_every_event_once_and_in_order(
    cluster: LocalRedisCluster, client: RedisCluster, names: Names
) -> None:
    fanout = EventFanout(client, names, "test", timeout_s=5.0)
    await fanout.start()
    moving_job, still_job = jobs_on_each_primary(client, names, 2, "migration")
    moving, still = Collector(), Collector()
    move = move_of(client, names.job_channel(moving_job))
    publish_moving = Publisher(client, names, moving_job)
    publish_still = Publisher(client, names, still_job)
    try:
        await fanout.subscribe(moving_job, moving)
        await fanout.subscribe(still_job, still)
        await publish_moving.publish(10)
        await publish_still.publish(10)
        await asyncio.to_thread(move.begin)
        # Blocking the event loop: the target owns the slot, and the job's next events land
        # there, before the gateway can hear of the move. Only the log has them.
        move.hand_over_to_target()
        publish_moving.publish_blocking(move.target, 15)
        # The slot's new owner is told to the source, which drops the channel: the listener
        # joins it on the target while the job goes on publishing.
        streaming = asyncio.create_task(publish_moving.publish(40, pause_s=0.01))
        await asyncio.to_thread(move.finish)
        await streaming
        await publish_still.publish(10)
        await until(lambda: moving.queued_seq >= 65 and still.queued_seq >= 20, "caught up")
        assert moving.seqs == list(range(1, 66))
        assert still.seqs == list(range(1, 21))
        # Only the moved channel was backfilled, with at least the events sent to the target
        # before the listener joined there.
        assert moving.holds >= 1
        assert moving.from_log >= 15
        assert still.holds == 0
        assert pubsub_links(server_of(cluster, move.target)) == 1
    finally:
        await fanout.close()
        await asyncio.to_thread(move.undo)


async def test_a_link_cut_comes_back_and_backfills_only_its_node_streams(
    cluster: LocalRedisCluster, client: RedisCluster, names: Names
) -> None:
    fanout = EventFanout(client, names, "test", timeout_s=5.0)
    await fanout.start()
    # Two streams on the node whose link is cut (each resubscribed with a command of its own
    # slot), one elsewhere.
    jobs = jobs_on_each_primary(client, names, 9, "cut")
    node_of = {job: owner_of(client, names.job_channel(job)) for job in jobs}
    cut_node = node_of[jobs[0]]
    on_cut = [job for job in jobs if node_of[job] == cut_node][:2]
    elsewhere = next(job for job in jobs if node_of[job] != cut_node)
    streams = {job: Collector() for job in [*on_cut, elsewhere]}
    publishers = {job: Publisher(client, names, job) for job in streams}
    try:
        for job, stream in streams.items():
            await fanout.subscribe(job, stream)
        for publisher in publishers.values():
            await publisher.publish(5)
        with server_of(cluster, cut_node).client() as admin:
            assert admin.client_kill_filter(_type="pubsub") == 1
        # Published while the link is away (it waits half a second before reconnecting).
        for publisher in publishers.values():
            await publisher.publish(5)
        await until(
            lambda: all(stream.queued_seq >= 10 for stream in streams.values()), "caught up"
        )
        for publisher in publishers.values():
            await publisher.publish(5)
        await until(lambda: all(stream.queued_seq >= 15 for stream in streams.values()), "went on")
        for stream in streams.values():
            assert stream.seqs == list(range(1, 16))
        assert [streams[job].holds for job in on_cut] == [1, 1]
        assert streams[elsewhere].holds == 0
    finally:
        await fanout.close()


async def test_a_cancel_spublished_on_the_cluster_stops_the_job(
    client: RedisCluster, names: Names
) -> None:
    signals = CancelSignals(client, names, disconnect_grace_s=30.0)
    await signals.start()
    try:
        cancellation = signals.watch("job-1")
        await until(lambda: client.spublish(names.cancel_channel, "job-1"), "heard the cancel")
        await until(lambda: cancellation.requested, "cancelled the job")
        assert cancellation.reason == "requested"
    finally:
        await signals.close()


async def test_a_job_is_abandoned_only_once_no_gateway_watches_it(
    client: RedisCluster, names: Names, owner: Owner
) -> None:
    signals = CancelSignals(client, names, disconnect_grace_s=0.4)
    listener = owner.listener
    await signals.start()
    try:
        watched = new_job_id("watched", in_session_slot=True)
        alone = new_job_id("alone", in_session_slot=True)
        await listener.subscribe(names.job_channel(watched))
        watched_cancellation, alone_cancellation = signals.watch(watched), signals.watch(alone)
        watches = [
            signals.watch_audience(watched, watched_cancellation),
            signals.watch_audience(alone, alone_cancellation),
        ]
        await until(lambda: alone_cancellation.requested, "cancelled the abandoned job")
        assert alone_cancellation.reason == "abandoned"
        await asyncio.sleep(1.0)
        assert not watched_cancellation.requested
        for watch in watches:
            await watch.stop()
    finally:
        await signals.close()


async def test_the_audience_is_counted_on_the_slot_owner_even_by_a_client_with_a_stale_map(
    cluster: LocalRedisCluster, client: RedisCluster, names: Names, owner: Owner
) -> None:
    listener = owner.listener
    worker = cluster_client(cluster, names.namespace)
    await worker.initialize()
    channel = names.job_channel(new_job_id("audience", in_session_slot=True))
    move = move_of(client, channel)
    try:
        assert await count_watchers(worker, channel) == 0
        await listener.subscribe(channel)
        assert await count_watchers(worker, channel) == 1
        await asyncio.to_thread(move.run)
        # The gateway's listener follows the slot to its new owner...
        await until(lambda: owner.live == [channel], "joined the channel on the new owner")
        # ...while the worker's map still names the old one, which counts 0.
        stale = worker.get_node_from_key(channel)
        assert stale is not None and stale.name == move.source
        assert await count_watchers(worker, channel) == 1
        listener.unsubscribe(channel)
        await until(lambda: _none_watch(worker, channel), "saw the audience leave")
    finally:
        await worker.aclose()
        await asyncio.to_thread(move.undo)


async def _none_watch(worker: RedisCluster, channel: str) -> bool:
    return await count_watchers(worker, channel) == 0
