"""Knowing when to stop a job: a cancel request from any gateway, or no client left watching.

A cancel sets the job's flag and is broadcast on the workers' cancel channel. Each worker process
listens to that channel (a :class:`~shared.pubsub_listener.PubSubListener`; on a cluster a
:class:`~shared.shard_listener.ShardedListener`, the channel being sharded) and cancels the job
if it runs it. A job cancelled before a worker took it is caught by its flag, read in the round
trip of the job's first event (not one of its own ahead of it): the pipeline's first
checkpoint, and the choice of the job's finish reason, wait for it (:meth:`Cancellation.known`).
Each time the listener is live again after an outage, the flags of the jobs running are read,
for the cancels broadcast while it could not hear them. A job nobody watches any more (no
gateway subscribed to its channel, so ``PUBSUB NUMSUB`` is zero) for the disconnect grace period
is cancelled too: that works across gateways and survives a gateway crash. On a cluster the
count is ``PUBSUB SHARDNUMSUB``, asked of the node that owns the channel's slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.cluster import RedisCluster

from shared.logging import get_logger
from shared.names import Names
from shared.pubsub_listener import RETRY_S, worth_logging
from shared.redis_client import RedisClient, RedisPipeline, as_text, is_cluster, is_redis_failure
from shared.shard_listener import listener_for
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

REASON_REQUESTED = "requested"
REASON_ABANDONED = "abandoned"


@dataclass
class Cancellation:
    """Set once a job must stop, with why."""

    reason: str | None = None
    # The reply of the job's cancel-flag read, while it is not applied yet.
    flag: asyncio.Future[Any] | None = None
    _stopped: asyncio.Future[None] | None = field(default=None, repr=False)

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def stopped(self) -> asyncio.Future[None]:
        """A future that resolves once the job is cancelled: to wait for alongside the
        pipeline's task, without a task of its own."""
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
            if self.requested:
                self._stopped.set_result(None)
        return self._stopped

    async def known(self) -> None:
        """Wait until the job's cancel flag is read, and apply it. Raises why the read failed
        (the round trip of the job's first event failed too)."""
        flag = self.flag
        if flag is None:
            return
        # Shielded: a checkpoint cancelled while it waits leaves the read to the others.
        if await asyncio.shield(flag):
            self.cancel(REASON_REQUESTED)
        self.flag = None


class AudienceWatch:
    """The audience watch of one running job. Its task starts only after the first poll period,
    from a timer: a job that ends sooner (most do) costs a timer, not a task to start and then
    cancel."""

    def __init__(self, watch: Coroutine[Any, Any, None], delay_s: float) -> None:
        self._watch: Coroutine[Any, Any, None] | None = watch
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._start)

    def _start(self) -> None:
        assert self._watch is not None
        self._task = asyncio.create_task(self._watch)
        self._watch = None

    async def stop(self) -> None:
        self._timer.cancel()
        if self._watch is not None:
            self._watch.close()  # never started
            self._watch = None
        await cancel_and_wait(self._task)


class CancelSignals:
    def __init__(self, redis: RedisClient, names: Names, *, disconnect_grace_s: float) -> None:
        self._redis = redis
        self._names = names
        self._grace_s = disconnect_grace_s
        self._watched: dict[str, Cancellation] = {}
        self._listener = listener_for(
            redis,
            channels=[names.cancel_channel],
            on_message=self._on_cancel,
            on_live=self._go_live,
            log_area="cancel",
        )
        # Reads the running jobs' flags after the listener is live again, beside it.
        self._reading_flags: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listener.start()

    async def close(self) -> None:
        await self._listener.close()
        await cancel_and_wait(self._reading_flags)

    def watch(self, job_id: str) -> Cancellation:
        """From now on, a cancel broadcast for ``job_id`` cancels it. One sent earlier left its
        flag: set the Cancellation's ``flag`` to the reply of :meth:`stage_flag_read`."""
        cancellation = self._watched[job_id] = Cancellation()
        return cancellation

    def stage_flag_read(self, job_id: str) -> Callable[[RedisPipeline], None]:
        """Stages the read of ``job_id``'s cancel flag: its reply is true when it is set."""
        key = self._names.job_cancel_flag(job_id)

        def read(pipe: RedisPipeline) -> None:
            pipe.exists(key)

        return read

    def release(self, job_id: str) -> None:
        self._watched.pop(job_id, None)

    def watch_audience(self, job_id: str, cancellation: Cancellation) -> AudienceWatch:
        """Cancel the job once no client has watched it for the disconnect grace period, until
        the watch is stopped."""
        return AudienceWatch(self._watch_audience(job_id, cancellation), self._poll_s)

    @property
    def _poll_s(self) -> float:
        return min(1.0, self._grace_s / 4)

    async def _watch_audience(self, job_id: str, cancellation: Cancellation) -> None:
        # Started one poll period in (see AudienceWatch): it looks first, then sleeps.
        channel = self._names.job_channel(job_id)
        loop = asyncio.get_running_loop()
        alone_since: float | None = None
        while not cancellation.requested:
            try:
                watchers = await count_watchers(self._redis, channel)
            except Exception as e:
                # An outage is not an abandonment.
                if not is_redis_failure(e):
                    raise
                await asyncio.sleep(self._poll_s)
                continue
            if watchers:
                alone_since = None
            elif alone_since is None:
                alone_since = loop.time()
            elif loop.time() - alone_since >= self._grace_s:
                cancellation.cancel(REASON_ABANDONED)
                return
            await asyncio.sleep(self._poll_s)

    def _on_cancel(self, _channel: bytes, job_id: bytes) -> None:
        cancellation = self._watched.get(as_text(job_id))
        if cancellation is not None:
            cancellation.cancel(REASON_REQUESTED)

    def _go_live(self, _channels: Collection[str]) -> None:
        # A read still retrying from an earlier outage reads an older list of jobs.
        if self._reading_flags is not None:
            self._reading_flags.cancel()
        self._reading_flags = asyncio.get_running_loop().create_task(self._read_running_flags())

    async def _read_running_flags(self) -> None:
        """What was broadcast while the listener was deaf went unheard: a running job's cancel
        from then is in its flag. Read beside the listener, which hears the cancels that come
        meanwhile, and retried until it succeeds."""
        running = [job_id for job_id, c in self._watched.items() if not c.requested]
        failures = 0
        while True:
            try:
                cancelled = await self._read_flags(running) if running else 0
                break
            except Exception as e:
                # Whatever failed: a read that gave up would leave those cancels unheard.
                failures += 1
                if worth_logging(failures):
                    log.warning(
                        "cancel.flag_read_failed",
                        error=str(e) or type(e).__name__,
                        retry_in_s=RETRY_S,
                        failures=failures,
                        # A bug, not an outage: where it happened.
                        exc_info=not is_redis_failure(e),
                    )
                await asyncio.sleep(RETRY_S)
        log.info("cancel.listener_live", running_jobs=len(running), cancelled=cancelled)

    async def _read_flags(self, running: list[str]) -> int:
        """Cancel those of ``running`` whose flag is set; returns how many."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in running:
                self.stage_flag_read(job_id)(pipe)
            flags = await pipe.execute()
        cancelled = 0
        for job_id, flag in zip(running, flags, strict=True):
            cancellation = self._watched.get(job_id)
            if flag and cancellation is not None and not cancellation.requested:
                cancellation.cancel(REASON_REQUESTED)
                cancelled += 1
        return cancelled


async def count_watchers(redis: RedisClient, channel: str) -> int:
    """How many gateways are subscribed to a job's ``channel``."""
    if is_cluster(redis):
        return await _count_shard_watchers(redis, channel)
    [(_, watchers)] = await redis.pubsub_numsub(channel)
    return int(watchers)


async def _count_shard_watchers(cluster: RedisCluster, channel: str) -> int:
    """The count for a sharded channel, asked of its slot's owner: any other node counts 0. A
    0 is asked again after a keyed read of the slot (the channel's own name: no key, the same
    slot): if the slot has moved, the read meets MOVED and the client's slot map follows it, so
    that a stale map never makes a watched job look abandoned."""
    watchers = await _ask_owner(cluster, channel)
    if watchers:
        return watchers
    await cluster.exists(channel)
    return await _ask_owner(cluster, channel)


async def _ask_owner(cluster: RedisCluster, channel: str) -> int:
    owner = cluster.get_node_from_key(channel)
    [(_, watchers)] = await cluster.pubsub_shardnumsub(channel, target_nodes=owner)
    return int(watchers)
