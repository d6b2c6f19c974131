"""The Worker: consumes jobs, runs each one's pipeline, and settles its delivery.

A delivery is acked only after the job's final event is published, so a worker that dies
mid-job leaves it to the broker to redeliver. A job that can never run is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from typing import Any

import structlog
from aio_pika.exceptions import AMQPError

from shared import events, job_trace, tracing
from shared.amqp import AMQP_MESSAGING_SYSTEM
from shared.embedded import IN_PROCESS_SYSTEM
from shared.job import Job, decode_job
from shared.jobqueue import JobConsumer, JobDelivery
from shared.logging import get_logger
from shared.messages import MessageStore
from shared.redis_client import RedisClient
from shared.settings import WorkerSettings
from shared.tasks import cancel_and_wait
from shared.wire import WireError
from worker.cancellation import Cancellation, CancelSignals
from worker.event_log import EventLogConflictError, EventPublishError, JobEventLog
from worker.history import SessionHistory
from worker.job_run import JobCancelledError, JobRun
from worker.metrics import WorkerMetrics
from worker.pipelines import Pipeline, PipelineError, PipelineResult
from worker.pipelines.echo import EchoPipeline
from worker.pipelines.rag import RagPipeline

log = get_logger(__name__)


def default_pipelines(settings: WorkerSettings, redis: RedisClient) -> dict[str, Pipeline]:
    return {
        "echo": EchoPipeline(token_delay_ms=settings.echo_token_delay_ms),
        "rag": RagPipeline(
            settings.rag,
            redis,
            settings.connections.names,
            history=SessionHistory(MessageStore(redis, settings.connections.names)),
        ),
    }


class Worker:
    """Runs up to ``settings.concurrency`` jobs at once from ``queue``."""

    def __init__(
        self,
        settings: WorkerSettings,
        redis: RedisClient,
        queue: JobConsumer,
        pipelines: Mapping[str, Pipeline] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._queue = queue
        self._names = settings.connections.names
        # What the job's spans name as the queue's system.
        self._messaging_system = (
            IN_PROCESS_SYSTEM if settings.connections.embedded else AMQP_MESSAGING_SYSTEM
        )
        self._messages = MessageStore(redis, self._names)
        self._cancels = CancelSignals(
            redis, self._names, disconnect_grace_s=settings.disconnect_grace_s
        )
        self._pipelines = dict(pipelines or default_pipelines(settings, redis))
        self._metrics = metrics
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last_activity = time.monotonic()
        # Set by close(): a job cancelled before it is set was cancelled by the job queue, whose
        # link went away with the delivery.
        self._closing = False
        self.jobs_done = 0

    async def start(self) -> None:
        """Begin consuming; returns once the consumer is registered."""
        await self._cancels.start()
        await self._queue.start_consuming(self._on_delivery, prefetch=self._settings.concurrency)
        log.info("worker.started", concurrency=self._settings.concurrency)

    async def close(self) -> None:
        """Stop consuming, give running jobs the grace period, then hand the rest back."""
        self._closing = True
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
        await self._cancels.close()
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
            await self._settle(delivery.reject(), "reject")
            return
        structlog.contextvars.bind_contextvars(
            job_id=job.job_id,
            request_id=job.request_id,
            session_id=job.session_id,
            user_id=job.user_id,
            worker_id=self._settings.worker_id,
        )
        redelivered = delivery.redelivered
        with job_trace.processing(
            delivery.headers,
            job,
            self._names,
            system=self._messaging_system,
            redelivered=redelivered,
            worker_id=self._settings.worker_id,
        ):
            await self._handle_job(delivery, job, redelivered)

    async def _handle_job(self, delivery: JobDelivery, job: Job, redelivered: bool) -> None:
        try:
            outcome = await self._run(job, redelivered=redelivered)
        except EventLogConflictError:
            log.warning("job.superseded", reason="another writer owns the job's stream")
            await self._settle(delivery.ack(), "ack")
            return
        except EventPublishError as e:
            # Redis stayed away past the retry bound: another run (later) picks the job up.
            log.error("job.requeued", reason="events_unpublishable", error=repr(e.__cause__))
            await self._settle(delivery.retry(), "retry")
            return
        except asyncio.CancelledError:
            # Shutdown ran out of grace, or the link the job came by was lost (the queue
            # cancels the deliveries it can no longer settle): either way the broker gives the
            # job to a worker again, which takes its stream over.
            await self._settle(delivery.requeue(), "requeue")
            log.warning("job.requeued", reason="shutdown" if self._closing else "queue_link_lost")
            raise
        except Exception as e:
            # A fault none of the above foresaw. Left unsettled, the delivery would sit unacked,
            # and its stream wait, for as long as this worker lives; handed back, the job runs
            # again, and the queue's delivery limit dead-letters one that fails every time.
            log.exception("job.requeued", reason="unexpected_error", error=repr(e))
            await self._settle(delivery.retry(), "retry")
            return
        await self._settle(delivery.ack(), "ack")
        self.jobs_done += 1
        log.debug("job.acked", outcome=outcome)

    async def _settle(self, decision: Awaitable[None], operation: str) -> None:
        """Ack, reject or requeue, shielded from cancellation. If the broker link is gone, the
        broker requeues the job by itself (and a rerun finds its finished log)."""
        try:
            with job_trace.settling(operation, self._names, self._messaging_system):
                await asyncio.shield(decision)
        except (AMQPError, ConnectionError, RuntimeError) as e:
            log.warning("job.settle_failed", error=repr(e))

    async def _run(self, job: Job, *, redelivered: bool) -> str:
        log.info("job.started", pipeline=job.pipeline, redelivered=redelivered)
        cancellation = self._cancels.watch(job.job_id)
        try:
            return await self._run_watched(job, cancellation, redelivered=redelivered)
        finally:
            self._cancels.release(job.job_id)

    async def _run_watched(self, job: Job, cancellation: Cancellation, *, redelivered: bool) -> str:
        event_log = JobEventLog(self._redis, self._names, self._settings.event_log, job.job_id)
        try:
            return await self._run_logged(job, event_log, cancellation, redelivered=redelivered)
        finally:
            await event_log.aclose()

    async def _run_logged(
        self, job: Job, event_log: JobEventLog, cancellation: Cancellation, *, redelivered: bool
    ) -> str:
        run = JobRun(
            job=job,
            log=event_log,
            messages=self._messages,
            cancellation=cancellation,
            span=tracing.current_span(),
        )
        # A first delivery can have no earlier run to continue, so it skips reading the log:
        # its first batch of events lands only on an empty log (a gateway that ended the job
        # as stalled, or a duplicate delivery's run, makes it a conflict).
        previous = await event_log.resume() if redelivered else None
        if previous is not None and previous.type in events.TERMINAL_TYPES:
            # The job ended before its ack was lost: publishing it again would duplicate it.
            log.info("job.already_finished", seq=previous.seq)
            return "duplicate"
        # A cancel sent before this run watched the job (while it was queued, or to an earlier
        # run) left only its flag. The flag is read in the round trip of the run's first event
        # rather than one of its own before it, and the pipeline's first checkpoint waits for it.
        cancellation.flag = event_log.read_along(self._cancels.stage_flag_read(job.job_id))
        if previous is None:
            await run.start()
        else:
            await run.reset("the job was interrupted and runs again")
        outcome = await self._run_pipeline(job, run)
        await run.forget_if_session_deleted()
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
        if run.span is not None:
            job_trace.record_outcome(
                run.span,
                outcome=outcome,
                ttft_ms=run.ttft_ms,
                tokens=run.tokens,
                duration_ms=run.duration_ms,
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
            result = await self._run_cancellable(pipeline, run, run.cancellation)
        except (asyncio.CancelledError, EventLogConflictError, EventPublishError):
            raise
        except PipelineError as e:
            log.warning("job.pipeline_error", code=e.code, error=e.message)
            await run.fail(e.message, e.code, e.retry_after_s)
            return "error"
        except Exception as e:
            log.exception("job.pipeline_failed")
            await run.fail(
                f"the {job.pipeline} pipeline failed: {type(e).__name__}", "pipeline_error"
            )
            return "error"
        if run.ended:
            await run.written()
            return result.finish_reason
        if run.cancellation.requested:
            log.info("job.cancelled", reason=run.cancellation.reason, tokens=run.tokens)
        await run.end(result.finish_reason, result.citations)
        return result.finish_reason

    async def _run_cancellable(
        self, pipeline: Pipeline, run: JobRun, cancellation: Cancellation
    ) -> PipelineResult:
        """Run the pipeline until it finishes or the job is cancelled, whichever is first.
        A cancelled pipeline is stopped where it stands (closing any upstream request)."""
        working = asyncio.create_task(self._run_to_checkpoint(pipeline, run))
        audience = self._cancels.watch_audience(run.job.job_id, cancellation)
        try:
            either: set[asyncio.Future[Any]] = {working, cancellation.stopped()}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await audience.stop()
            if not working.done():
                await cancel_and_wait(working)
        # A pipeline that finished before any checkpoint still ends cancelled if it was.
        await cancellation.known()
        if run.ended:
            return working.result()
        if cancellation.requested or working.cancelled():
            return PipelineResult(finish_reason=events.FINISH_CANCELLED)
        return working.result()

    @staticmethod
    async def _run_to_checkpoint(pipeline: Pipeline, run: JobRun) -> PipelineResult:
        try:
            result = await pipeline.run(run)
        except JobCancelledError:
            return PipelineResult(finish_reason=events.FINISH_CANCELLED)
        # The answer is complete: its end is queued at once, so that it goes out with the last
        # tokens (one round trip) rather than after the cancel watches are wound down.
        await run.cancellation.known()
        if not run.cancellation.requested:
            await run.emit_end(result.finish_reason, result.citations)
        return result
