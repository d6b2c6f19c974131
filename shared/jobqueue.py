"""The job queue as both services see it, whatever carries it (RabbitMQ or the embedded queue).

The gateway publishes jobs; the worker consumes deliveries and settles each one exactly once:
ack when the job's final event is out, reject to dead-letter a job that can never run, requeue
to hand it to another worker, retry to hand back a run that failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from shared.job import Job


class QueueUnavailableError(ConnectionError):
    """The job queue cannot take a job right now (the broker is down or unreachable)."""


class JobDelivery(Protocol):
    @property
    def body(self) -> bytes: ...

    @property
    def redelivered(self) -> bool: ...

    @property
    def headers(self) -> Mapping[str, Any]:
        """The message's headers: the trace context of the request that made the job."""
        ...

    async def ack(self) -> None: ...

    async def reject(self) -> None:
        """Dead-letter the job: it will never run."""

    async def requeue(self) -> None:
        """Give the job back so that another worker takes it: not the job's failure (this
        worker is going away, or lost its link)."""

    async def retry(self) -> None:
        """Give the job back as failed: the queue counts it, and dead-letters a job that has
        failed ``JOB_DELIVERY_LIMIT`` times over."""


DeliveryHandler = Callable[[JobDelivery], Awaitable[None]]


class JobPublisher(Protocol):
    async def publish(self, job: Job) -> None:
        """Hand a job to the queue, with the current trace context in its headers (when
        traced, see shared/job_trace.py); raise QueueUnavailableError if it cannot be
        confirmed."""

    async def ping(self) -> bool:
        """Whether the queue answers now."""


class JobConsumer(Protocol):
    async def start_consuming(self, handler: DeliveryHandler, prefetch: int) -> None: ...

    async def stop_consuming(self) -> None: ...

    async def close(self) -> None: ...
