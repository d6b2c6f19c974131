"""A private Redis Cluster for tests (``LocalRedisCluster``: 3 primaries, 3 replicas, on free
ports), and what the tests do to it: find a slot's primary, count a node's pub/sub links, move a
slot to another primary as a resharding does, publish a job's events as a worker does; and a
stream that records what the fanout hands it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis import Redis
from redis.asyncio.cluster import RedisCluster

from launcher.local_redis import LocalRedisCluster, RedisProcess
from shared import redis_scripts, replay_log
from shared.events import Event, encode_event
from shared.ids import new_job_id
from shared.names import Names
from shared.redis_client import connect_redis, publish_command
from shared.settings import EventLogSettings
from tests.conftest import cluster_connections


def cluster_names(cluster: LocalRedisCluster, namespace: str) -> Names:
    """The names chatstream uses on ``cluster`` (hash-tagged)."""
    return cluster_connections(cluster, namespace).names


def cluster_client(cluster: LocalRedisCluster, namespace: str) -> RedisCluster:
    """A client as chatstream builds it (``connect_redis``)."""
    client = connect_redis(cluster_connections(cluster, namespace))
    assert isinstance(client, RedisCluster)
    return client


def server_of(cluster: LocalRedisCluster, node_name: str) -> RedisProcess:
    return next(server for server in cluster.servers if server.address == node_name)


def pubsub_links(server: RedisProcess) -> int:
    """How many pub/sub connections ``server`` has (SSUBSCRIBE makes one too)."""
    with server.client() as client:
        return len(client.client_list(_type="pubsub"))


async def until(check: Callable[[], object], what: str, timeout_s: float = 15.0) -> None:
    """Wait until ``check()`` (a function, sync or async) is true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {what}")


def jobs_on_each_primary(client: RedisCluster, names: Names, count: int, label: str) -> list[str]:
    """``count`` job ids, their channels spread round the primaries."""
    jobs_by_node: dict[str, list[str]] = {node.name: [] for node in client.get_primaries()}
    index = 0
    while min(map(len, jobs_by_node.values())) < count // len(jobs_by_node) + 1:
        job = new_job_id(f"{label}-{index}", in_session_slot=True)
        index += 1
        jobs_by_node[owner_of(client, names.job_channel(job))].append(job)
    spread = [job for jobs in zip(*jobs_by_node.values(), strict=False) for job in jobs]
    return spread[:count]


def owner_of(client: RedisCluster, key: str) -> str:
    """The node that serves ``key``'s slot, as the client's map has it."""
    node = client.get_node_from_key(key)
    assert node is not None
    return node.name


class Publisher:
    """Appends a job's events with seqs 1, 2, ... with a worker's append script, over a cluster
    client that follows MOVED and ASK; an append that meets an outage is sent again until it
    lands."""

    def __init__(self, client: RedisCluster, names: Names, job_id: str) -> None:
        self._client = client
        self._job_id = job_id
        self._appender = replay_log.EventAppender(
            names, EventLogSettings(), publish_command(client)
        )
        self.seq = 0

    async def publish(self, count: int = 1, *, pause_s: float = 0.0) -> None:
        for _ in range(count):
            await self._append(self._next())
            if pause_s:
                await asyncio.sleep(pause_s)

    def publish_blocking(self, node_name: str, count: int) -> None:
        """Append on ``node_name``, blocking the caller: run on the event loop's thread, the
        appends are all done before the process under test hears of anything."""
        with _admin(node_name) as node:
            node.script_load(replay_log.APPEND_EVENTS.text)
            for _ in range(count):
                raw = self._next()
                append = self._appender.command(self._job_id, self.seq, [raw])
                assert node.execute_command(*append) == 0

    def _next(self) -> bytes:
        self.seq += 1
        event = Event(job_id=self._job_id, seq=self.seq, type="token", payload={"n": self.seq})
        return encode_event(event)

    async def _append(self, raw: bytes) -> None:
        deadline = time.monotonic() + 60.0
        while True:
            try:
                # 0 also when an earlier attempt landed and its reply was lost.
                [ended_at] = await redis_scripts.run_staged(
                    self._client,
                    lambda pipe: self._appender.stage(pipe, self._job_id, self.seq, [raw]),
                )
                assert ended_at == 0, f"the log ends at {ended_at}, not at {self.seq - 1}"
                return
            except AssertionError:
                raise
            except Exception:
                # A primary killed: refused connections and an uncovered slot until its
                # replica takes over.
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


def _admin(node_name: str) -> Redis:
    host, port = node_name.rsplit(":", 1)
    return Redis(host=host, port=int(port), socket_timeout=5, decode_responses=True)


def node_id(node_name: str) -> str:
    with _admin(node_name) as admin:
        return str(admin.execute_command("CLUSTER MYID"))


class SlotMove:
    """Moves one slot from its primary to another the way ``redis-cli --cluster reshard`` does,
    in steps a test can publish between: :meth:`begin` (IMPORTING, MIGRATING, MIGRATE of the
    keys), :meth:`hand_over_to_target` and :meth:`finish` (the slot's new owner, told to the
    target, then to the source and the other primaries).

    Between the first and the second step, a script that names a key absent from either side
    (a channel declared in KEYS is one) meets TRYAGAIN: nothing can be appended then."""

    def __init__(self, slot: int, source: str, target: str, every_primary: list[str]) -> None:
        self.slot = slot
        self.source = source
        self.target = target
        self._others = [name for name in every_primary if name not in (source, target)]
        self._steps_done = 0

    def begin(self) -> None:
        self._steps_done = 1
        source_id, target_id = node_id(self.source), node_id(self.target)
        with _admin(self.target) as target:
            target.execute_command("CLUSTER SETSLOT", self.slot, "IMPORTING", source_id)
        with _admin(self.source) as source:
            source.execute_command("CLUSTER SETSLOT", self.slot, "MIGRATING", target_id)
            host, port = self.target.rsplit(":", 1)
            while keys := source.execute_command("CLUSTER GETKEYSINSLOT", self.slot, 100):
                source.execute_command("MIGRATE", host, int(port), "", 0, 5000, "KEYS", *keys)

    def hand_over_to_target(self) -> None:
        self._steps_done = 2
        self._set_owner([self.target])

    def finish(self) -> None:
        self._steps_done = 3
        self._set_owner([self.source, *self._others])

    def _set_owner(self, told: list[str]) -> None:
        target_id = node_id(self.target)
        for name in told:
            with _admin(name) as admin:
                admin.execute_command("CLUSTER SETSLOT", self.slot, "NODE", target_id)

    def run(self) -> None:
        self.begin()
        self.hand_over_to_target()
        self.finish()

    def undo(self) -> None:
        """Put the slot back on its source, from whichever step the move stopped at."""
        if not self._steps_done:
            return
        for step in [self.begin, self.hand_over_to_target, self.finish][self._steps_done :]:
            step()
        every = [self.source, self.target, *self._others]
        SlotMove(self.slot, self.target, self.source, every).run()


def move_of(client: RedisCluster, key: str) -> SlotMove:
    """A move of ``key``'s slot from its primary to another one."""
    slot = client.keyslot(key)
    source = client.get_node_from_key(key)
    assert source is not None
    every = [node.name for node in client.get_primaries()]
    target = next(name for name in every if name != source.name)
    return SlotMove(slot, source.name, target, every)


class Collector:
    """A stream as the fanout feeds one, merging by seq as ``ClientStream`` does: it keeps
    every seq it queues, in order, counts how often it was held for a backfill, and how many
    of its events only the replay log gave it."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.holds = 0
        self.from_log = 0
        self._held: list[Event] | None = None

    @property
    def queued_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def deliver(self, event: Event) -> None:
        if self._held is not None:
            self._held.append(event)
        else:
            self._queue(event)

    def hold_live(self) -> None:
        self.holds += 1
        self._held = []

    def release_live(self, replayed: list[Event]) -> None:
        held, self._held = self._held or [], None
        live = {event.seq for event in held}
        for event in sorted([*replayed, *held], key=lambda event: event.seq):
            if event.seq > self.queued_seq and event.seq not in live:
                self.from_log += 1
            self._queue(event)

    def _queue(self, event: Event) -> None:
        if event.seq > self.queued_seq:
            self.seqs.append(event.seq)
