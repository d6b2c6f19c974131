"""The synthetic publisher's Redis: one server, or each primary of a Redis Cluster, over a bare
connection each (``bench/resp.py``), and which of them serves a key's slot.

The cluster's slot map is learnt once, at the start: a benchmark phase moves no slot and fails
no node over, so the redirections a real client follows (MOVED, ASK) never come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from bench.resp import Command, RespConnection


@dataclass
class Shard:
    """One Redis, or one primary of a cluster: its ``host:port`` and its connection."""

    address: str
    connection: RespConnection


@dataclass
class Shards:
    """Where each key's commands go. ``owners[slot]`` is the index in ``shards`` of the slot's
    primary; one Redis serves every slot. ``publish_command`` is what chatstream publishes its
    channels with there (``shared.redis_client.publish_command``)."""

    shards: list[Shard]
    owners: list[int]
    publish_command: str

    @classmethod
    async def one_redis(cls, url: str) -> Shards:
        connection = await RespConnection.open(url)
        address = url.removeprefix("redis://").split("/", 1)[0]
        return cls([Shard(address, connection)], [0] * REDIS_CLUSTER_HASH_SLOTS, "PUBLISH")

    @classmethod
    async def cluster(cls, nodes: str) -> Shards:
        """Each primary of the cluster that ``nodes`` (``host:port,...``) belongs to, as the
        first of them tells (``CLUSTER SLOTS``)."""
        seed = await RespConnection.open(f"redis://{nodes.partition(',')[0]}")
        try:
            [ranges] = await seed.execute([("CLUSTER", "SLOTS")])
        finally:
            await seed.aclose()
        assert isinstance(ranges, list)
        found = cls([], [-1] * REDIS_CLUSTER_HASH_SLOTS, "SPUBLISH")
        try:
            # Each range: its first slot, its last, its primary (host, port, id), its replicas.
            for first, last, (host, port, *_), *_replicas in ranges:
                await found._add(first, last, f"{host.decode()}:{port}")
        except BaseException:
            await found.aclose()
            raise
        return found

    async def _add(self, first: int, last: int, address: str) -> None:
        index = next((i for i, s in enumerate(self.shards) if s.address == address), None)
        if index is None:
            index = len(self.shards)
            self.shards.append(Shard(address, await RespConnection.open(f"redis://{address}")))
        self.owners[first : last + 1] = [index] * (last - first + 1)

    def index_of(self, key: str) -> int:
        """The index in ``shards`` of the one that serves ``key``."""
        return self.owners[key_slot(key.encode())]

    async def execute(self, batches: Sequence[Sequence[Command]]) -> None:
        """Send ``batches[i]`` to shard ``i``, all in one round trip each, concurrently."""
        sends = [
            shard.connection.execute(batch)
            for shard, batch in zip(self.shards, batches, strict=True)
            if batch
        ]
        # One Redis, or every command on one shard: no task to gather for.
        if len(sends) == 1:
            await sends[0]
        else:
            await asyncio.gather(*sends)

    async def on_each(self, command: Command) -> None:
        await self.execute([[command]] * len(self.shards))

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.connection.aclose()
