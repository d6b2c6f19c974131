"""The Worker: consumes jobs, runs each one's pipeline, and settles its delivery.

A delivery is acked only after the job's final event is published, so a worker that dies
mid-job leaves it to the broker to redeliver. A job that can never run is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog
from redis.asyncio import Redis

from shared import events
from shared.jobqueue import JobConsumer, JobDelivery
from shared.logging import get_logger
from shared.settings import WorkerSettings
from shared.wire import Job, WireError, decode_job
from worker.event_log import JobEventLog
from worker.job_run import JobRun
from worker.metrics import WorkerMetrics
from worker.pipelines import Pipeline
from worker.pipelines.echo import EchoPipeline

log = get_logger(__name__)


def default_pipelines(settings: WorkerSettings) -> dict[str, Pipeline]:
    return {"echo": EchoPipeline(token_delay_ms=settings.echo_token_delay_ms)}


class Worker:
    """Runs up to ``settings.concurrency`` jobs at once from ``queue``."""

    def __init__(
        self,
        settings: WorkerSettings,
        redis: Redis,
        queue: JobConsumer,
        pipelines: Mapping[str, Pipeline] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._queue = queue
        self._names = settings.connections.names
        self._pipelines = dict(pipelines or default_pipelines(settings))
        self._metrics = metrics
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last_activity = time.monotonic()
        self.jobs_done = 0

    async def start(self) -> None:
        """Begin consuming; returns once the consumer is registered."""
        await self._queue.start_consuming(self._on_delivery, prefetch=self._settings.concurrency)
        log.info("worker.started", concurrency=self._settings.concurrency)

    async def close(self) -> None:
        """Stop consuming, give running jobs the grace period, then hand the rest back."""
        await self._queue.stop_consuming()
        running = set(self._in_flight)
        if running:
            log.info("worker.draining", jobs=len(running), grace_s=self._settings.shutdown_grace_s)
            _, unfinished = await asyncio.wait(running, timeout=self._settings.shutdown_grace_s)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
        await self._queue.close()
        log.info("worker.stopped", jobs_done=self.jobs_done)

    async def run_until_idle(self, idle_s: float = 0.5) -> None:
        """Drain mode for tests: return once no job has run or arrived for ``idle_s``."""
        while True:
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))
                continue
            quiet_for = time.monotonic() - self._last_activity
            if quiet_for >= idle_s:
                return
            await asyncio.sleep(idle_s - quiet_for)

    async def _on_delivery(self, delivery: JobDelivery) -> None:
        # The consumer calls this in a task of its own; record it so close() can wait for it.
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        self._last_activity = time.monotonic()
        try:
            await self._handle(delivery)
        finally:
            self._in_flight.discard(task)
            self._last_activity = time.monotonic()

    async def _handle(self, delivery: JobDelivery) -> None:
        structlog.contextvars.clear_contextvars()
        try:
            job = decode_job(delivery.body)
        except WireError as e:
            log.error("job.malformed", error=str(e), bytes=len(delivery.body))
            await asyncio.shield(delivery.reject())
            return
        structlog.contextvars.bind_contextvars(
            job_id=job.job_id,
            request_id=job.request_id,
            session_id=job.session_id,
            user_id=job.user_id,
            worker_id=self._settings.worker_id,
        )
        try:
            outcome = await self._run(job, redelivered=delivery.redelivered)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: the broker gives the job to another worker.
            await asyncio.shield(delivery.requeue())
            log.warning("job.requeued", reason="shutdown")
            raise
        await asyncio.shield(delivery.ack())
        self.jobs_done += 1
        log.debug("job.acked", outcome=outcome)

    async def _run(self, job: Job, *, redelivered: bool) -> str:
        event_log = JobEventLog(self._redis, self._names, self._settings.event_log, job.job_id)
        run = JobRun(job=job, log=event_log)
        previous = await event_log.resume()
        if previous is not None and previous.type in events.TERMINAL_TYPES:
            # The job ended before its ack was lost: publishing it again would duplicate it.
            log.info("job.already_finished", seq=previous.seq)
            return "duplicate"
        if previous is None:
            await run.start()
        else:
            await event_log.emit(
                events.RESET, {"reason": "the job was taken over by another worker"}
            )
        outcome = await self._run_pipeline(job, run)
        log.info(
            "job.finished",
            pipeline=job.pipeline,
            outcome=outcome,
            redelivered=redelivered,
            duration_ms=run.duration_ms,
            ttft_ms=run.ttft_ms,
            tokens=run.tokens,
            events=event_log.published,
            queue_wait_ms=max(0, int(time.time() * 1000) - job.created_at_ms - run.duration_ms),
        )
        if self._metrics is not None:
            self._metrics.job_finished(
                pipeline=job.pipeline,
                outcome=outcome,
                duration_ms=run.duration_ms,
                ttft_ms=run.ttft_ms,
                tokens=run.tokens,
            )
        return outcome

    async def _run_pipeline(self, job: Job, run: JobRun) -> str:
        pipeline = self._pipelines.get(job.pipeline)
        if pipeline is None:
            await run.fail(f"unknown pipeline {job.pipeline!r}", "unknown_pipeline")
            return "error"
        try:
            result = await pipeline.run(run)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("job.pipeline_failed")
            await run.fail(
                f"the {job.pipeline} pipeline failed: {type(e).__name__}", "pipeline_error"
            )
            return "error"
        await run.end(result.finish_reason, result.citations)
        return result.finish_reason
