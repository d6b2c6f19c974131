"""Knowing when to stop a job: a cancel request from any gateway, or no client left watching.

Each worker process holds one pub/sub subscription to the cancel channel. A job that was
cancelled before this worker took it was broadcast while it waited in the queue: the listener
remembers the cancels of jobs it is not running (worker.heard_cancels), so a job created while
the subscription was live, on its first delivery, starts cancelled, or not, with no read
(docs/decisions.md, Cancellation, says where that can miss). Any other job is caught by
its cancel flag, read in the round trip of the job's first event (not one of its own ahead of
it): the pipeline's first checkpoint, and the choice of the job's finish reason, wait for it
(:meth:`Cancellation.known`). Each time the subscription is live again after an outage, the
flags of the jobs running are read, for the cancels broadcast while it was lost; a link that
went silent is found out by a ping (``LIVENESS_S``). A job nobody
watches any more (no gateway subscribed to its channel, so ``PUBSUB NUMSUB`` is zero) for the
disconnect grace period is cancelled too: that works across gateways and survives a gateway
crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.job import Job
from shared.logging import get_logger
from shared.names import Names
from shared.redis_client import as_text
from shared.tasks import cancel_and_wait
from worker.heard_cancels import HeardCancels

log = get_logger(__name__)

LISTENER_RETRY_S = 0.5
# A link that died without a word (a host gone, a partition) would leave the listener waiting
# forever, deaf and trusted: it pings Redis after this long without a message, and takes the
# link for dead when the pong is this late too.
LIVENESS_S = 2.0
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
    def __init__(
        self, redis: Redis, names: Names, *, disconnect_grace_s: float, clock_skew_margin_ms: int
    ) -> None:
        self._redis = redis
        self._names = names
        self._grace_s = disconnect_grace_s
        self._watched: dict[str, Cancellation] = {}
        self._heard = HeardCancels(clock_skew_margin_ms)
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        # Reads the running jobs' flags after each confirmation, beside the listener.
        self._going_live: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.subscribe(self._names.cancel_channel)
        self._listener = asyncio.create_task(self._listen(), name="cancel-listener")

    async def close(self) -> None:
        await cancel_and_wait(self._listener)
        await cancel_and_wait(self._going_live)
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def watch(self, job_id: str) -> Cancellation:
        """From now on, a cancel broadcast for ``job_id`` cancels it; one heard earlier already
        has. For a job that :meth:`heard_every_cancel_of` does not cover, one sent earlier may
        have left only its flag: set the Cancellation's ``flag`` to the reply of
        :meth:`stage_flag_read`."""
        cancellation = self._watched[job_id] = Cancellation()
        if self._heard.take(job_id):
            cancellation.cancel(REASON_REQUESTED)
        return cancellation

    def heard_every_cancel_of(self, job: Job) -> bool:
        """Whether the listener was live for as long as ``job`` could be cancelled, so that its
        flag need not be read."""
        return self._heard.covers(job.created_at_ms)

    def stage_flag_read(self, job_id: str) -> Callable[[Pipeline], None]:
        """Stages the read of ``job_id``'s cancel flag: its reply is true when it is set."""
        key = self._names.job_cancel_flag(job_id)

        def read(pipe: Pipeline) -> None:
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
                [(_, watchers)] = await self._redis.pubsub_numsub(channel)
            except RedisError:
                # An outage is not an abandonment.
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

    async def _listen(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(self._names.cancel_channel)
                await self._read_messages(self._pubsub)
            except (RedisError, OSError) as e:
                self._deafen()
                log.warning("cancel.listener_error", error=str(e), retry_in_s=LISTENER_RETRY_S)
                # A fresh subscription, whatever broke: its confirmation makes the listener live
                # again only after the running jobs' flags are read once more.
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(LISTENER_RETRY_S)

    async def _read_messages(self, pubsub: PubSub) -> None:
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=LIVENESS_S)
            if message is None:
                if pinged:
                    raise RedisConnectionError(f"no pong from Redis in {LIVENESS_S} s")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "message":
                self._on_cancel(as_text(message["data"]))
            elif message["type"] == "subscribe":
                # Confirmed, at first or after redis-py reconnected by itself. Until the running
                # jobs' flags are read, the jobs taken read their own: after redis-py reconnected
                # by itself, the listener was deaf for a while without knowing it.
                self._deafen()
                self._going_live = asyncio.create_task(self._go_live(_now_ms()))

    def _deafen(self) -> None:
        """Vouch for no job until the running jobs' flags are read again."""
        self._heard.deaf()
        if self._going_live is not None:
            self._going_live.cancel()

    def _on_cancel(self, job_id: str) -> None:
        cancellation = self._watched.get(job_id)
        if cancellation is not None:
            cancellation.cancel(REASON_REQUESTED)
        else:
            self._heard.heard(job_id, _now_ms())

    async def _go_live(self, live_since_ms: int) -> None:
        """What was broadcast while the subscription was lost went unheard: a running job's
        cancel from then is in its flag. Read beside the listener, which hears the cancels that
        come meanwhile, and retried until it succeeds or the subscription breaks again."""
        running = [job_id for job_id, c in self._watched.items() if not c.requested]
        while True:
            try:
                cancelled = await self._read_flags(running) if running else 0
                break
            except (RedisError, OSError) as e:
                log.warning("cancel.flag_read_failed", error=str(e), retry_in_s=LISTENER_RETRY_S)
                await asyncio.sleep(LISTENER_RETRY_S)
        self._heard.listening(live_since_ms)
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


def _now_ms() -> int:
    return int(time.time() * 1000)
