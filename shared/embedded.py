"""The embedded transports: an in-process job queue and an in-process Redis, so that
``make run`` works on a machine with no servers. Gateway and worker share them inside one process.

This deliberately departs from production: nothing survives a restart, and there is one worker,
which takes a job handed back itself. See docs/embedded.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fakeredis

from shared import job_trace
from shared.job import Job, encode_job
from shared.jobqueue import DeliveryHandler
from shared.logging import get_logger
from shared.names import JOB_DELIVERY_LIMIT
from shared.redis_client import RedisClient
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

# What the embedded queue's spans name as their messaging system and destination.
IN_PROCESS_SYSTEM = "in-process"
IN_PROCESS_QUEUE = "jobs"


@dataclass(slots=True)
class InProcessDelivery:
    body: bytes
    redelivered: bool
    _queue: InProcessJobQueue
    headers: Mapping[str, Any] = field(default_factory=dict)
    # The runs of this job that failed before this delivery.
    failures: int = 0

    async def ack(self) -> None:
        return None

    async def reject(self) -> None:
        self._queue.dead_letters.append(self.body)

    async def requeue(self) -> None:
        self._queue.put_raw(
            self.body, redelivered=True, headers=self.headers, failures=self.failures
        )

    async def retry(self) -> None:
        # As the quorum queue's delivery limit: a job that keeps failing is not run forever.
        if self.failures >= JOB_DELIVERY_LIMIT:
            await self.reject()
            return
        self._queue.put_raw(
            self.body, redelivered=True, headers=self.headers, failures=self.failures + 1
        )


@dataclass
class InProcessJobQueue:
    """An unbounded FIFO of jobs with at most ``prefetch`` handled at once."""

    _queue: asyncio.Queue[tuple[bytes, bool, Mapping[str, Any], int]] = field(
        default_factory=asyncio.Queue
    )
    dead_letters: list[bytes] = field(default_factory=list)
    _consumer: asyncio.Task[None] | None = None
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    def put_raw(
        self,
        body: bytes,
        *,
        redelivered: bool = False,
        headers: Mapping[str, Any] | None = None,
        failures: int = 0,
    ) -> None:
        self._queue.put_nowait((body, redelivered, headers or {}, failures))

    async def publish(self, job: Job) -> None:
        with job_trace.publishing(job, IN_PROCESS_SYSTEM, IN_PROCESS_QUEUE) as headers:
            self.put_raw(encode_job(job), headers=headers)

    async def ping(self) -> bool:
        return True

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def start_consuming(self, handler: DeliveryHandler, prefetch: int) -> None:
        slots = asyncio.Semaphore(prefetch)

        async def run_one(
            body: bytes, redelivered: bool, headers: Mapping[str, Any], failures: int
        ) -> None:
            try:
                await handler(InProcessDelivery(body, redelivered, self, headers, failures))
            finally:
                slots.release()

        async def consume() -> None:
            while True:
                await slots.acquire()
                task = asyncio.create_task(run_one(*await self._queue.get()))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

        self._consumer = asyncio.create_task(consume())

    async def stop_consuming(self) -> None:
        await cancel_and_wait(self._consumer)
        self._consumer = None

    async def close(self) -> None:
        await self.stop_consuming()


@dataclass
class EmbeddedServers:
    """What stands in for Redis and RabbitMQ in embedded mode, shared by gateway and worker."""

    redis_server: fakeredis.FakeServer = field(default_factory=fakeredis.FakeServer)
    job_queue: InProcessJobQueue = field(default_factory=InProcessJobQueue)

    def redis(self) -> RedisClient:
        return fakeredis.FakeAsyncRedis(server=self.redis_server)
