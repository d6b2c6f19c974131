"""``python -m bench.publisher``: a synthetic worker. It publishes token events for jobs that no
worker runs, exactly as ``worker/event_log.py`` does (``shared.replay_log.EventAppender``: the
replay log and the channel, the same msgpack bytes, ``seq`` rising per job), so the gateway
cannot tell the difference.

Each token's content is the publish time (``time.monotonic_ns()``, one clock for every process
on the machine), so a client computes publish-to-receipt latency. The events due in one tick go
out in one write, as several workers' concurrent publishes would, over a bare connection
(``bench/resp.py``) so that the load generator costs the machine little. On a Redis Cluster
(``"cluster_nodes"`` in the spec) each primary has its connection and its write per tick, sent
concurrently, with the jobs' keys hash-tagged and their events published with SPUBLISH, as a
worker on the cluster does (``bench/shards.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import uvloop

from bench import toolio
from bench.resp import Command
from bench.shards import Shards
from shared import events, replay_log
from shared.events import Event, encode_event
from shared.names import Names
from shared.settings import EventLogSettings

TICK_S = 0.001
# At most this many events per write, so that a burst cannot become one huge write.
MAX_BATCH = 256


class Publishes(Protocol):
    """What :func:`publish_for` drives: these jobs, or the peer row's nchan channels
    (bench/nchan_publisher.py)."""

    published: int

    async def publish(self, count: int) -> None: ...


class SyntheticJobs:
    def __init__(self, shards: Shards, names: Names, job_ids: list[str]) -> None:
        self._shards = shards
        self._appender = replay_log.EventAppender(names, EventLogSettings(), shards.publish_command)
        self._job_ids = job_ids
        self._seqs = dict.fromkeys(job_ids, 0)
        self._shard_of = {
            job_id: shards.index_of(names.job_replay_log(job_id)) for job_id in job_ids
        }
        self._events_by_shard = [0] * len(shards.shards)
        self._writes_by_shard = [0] * len(shards.shards)
        self._next = 0
        self.published = 0

    async def publish(self, count: int) -> None:
        """Publish ``count`` events, round-robin over the jobs, in one round trip (per shard)."""
        stamp = str(time.monotonic_ns())
        due: dict[str, list[bytes]] = {}
        for _ in range(count):
            job_id = self._job_ids[self._next % len(self._job_ids)]
            self._next += 1
            self._seqs[job_id] += 1
            event = Event(job_id, self._seqs[job_id], events.TOKEN, events.token_payload(stamp))
            due.setdefault(job_id, []).append(encode_event(event))
        batches: list[list[Command]] = [[] for _ in self._shards.shards]
        for job_id, raws in due.items():
            shard = self._shard_of[job_id]
            batches[shard].append(
                self._appender.command(job_id, self._seqs[job_id] - len(raws) + 1, raws)
            )
            self._events_by_shard[shard] += len(raws)
        for shard, batch in enumerate(batches):
            self._writes_by_shard[shard] += bool(batch)
        await self._shards.execute(batches)
        self.published += count

    def spread(self) -> dict[str, dict[str, int]]:
        """Per shard (``host:port``): how many of the jobs it holds, of the events, and of the
        writes (round trips) that carried them."""
        jobs = [0] * len(self._shards.shards)
        for shard in self._shard_of.values():
            jobs[shard] += 1
        return {
            shard.address: {
                "jobs": jobs[i],
                "events": self._events_by_shard[i],
                "writes": self._writes_by_shard[i],
            }
            for i, shard in enumerate(self._shards.shards)
        }


async def publish_for(jobs: Publishes, rate: float, duration_s: float) -> float:
    """Publish at ``rate`` events/s (0: as fast as one process can) for ``duration_s``. At a
    rate, exactly ``rate * duration_s`` events: the last tick's are not left out."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + duration_s
    while (now := loop.time()) < deadline:
        if rate <= 0:
            await jobs.publish(MAX_BATCH)
            continue
        due = int(rate * (now - started)) - jobs.published
        if due > 0:
            await jobs.publish(min(due, MAX_BATCH))
        else:
            await asyncio.sleep(TICK_S)
    if rate > 0:
        while (due := round(rate * duration_s) - jobs.published) > 0:
            await jobs.publish(min(due, MAX_BATCH))
    return loop.time() - started


async def main() -> None:
    spec = toolio.spec()
    job_ids = toolio.read_job_ids(spec["job_ids_file"])
    cluster_nodes = spec.get("cluster_nodes")
    shards = await (
        Shards.cluster(cluster_nodes) if cluster_nodes else Shards.one_redis(spec["redis_url"])
    )
    try:
        # Appends go by the script's hash, as a worker's do; a bare connection cannot load it
        # on demand (shared/redis_scripts.py), so each shard loads it up front.
        await shards.on_each(("SCRIPT", "LOAD", replay_log.APPEND_EVENTS.text))
        jobs = SyntheticJobs(
            shards, Names(spec["namespace"], hash_tags=bool(cluster_nodes)), job_ids
        )
        toolio.emit({**await publish_and_report(jobs, spec), "shards": jobs.spread()})
    finally:
        await shards.aclose()


async def publish_and_report(jobs: Publishes, spec: dict[str, Any]) -> dict[str, Any]:
    """Publish at ``spec``'s rate for its duration; what was published, and the CPU it took."""
    cpu_before = time.process_time()
    elapsed_s = await publish_for(jobs, float(spec["rate"]), float(spec["duration_s"]))
    return {
        "published": jobs.published,
        "elapsed_s": round(elapsed_s, 3),
        "rate": round(jobs.published / elapsed_s, 1) if elapsed_s else 0,
        "cpu_s": round(time.process_time() - cpu_before, 3),
    }


if __name__ == "__main__":
    uvloop.run(main())
