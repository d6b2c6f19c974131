"""The pipeline stops at ``run.checkpoint()`` between steps and between tokens: a cancellation
raised there ends it before the next step or token."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from shared.knowledge import KnowledgeStore
from shared.names import Names
from shared.settings import EventLogSettings, RagSettings
from shared.wire import Job
from worker.event_log import JobEventLog
from worker.job_run import JobRun
from worker.pipelines.rag import RagPipeline


class CancelAfterFirstToken(JobRun):
    checkpoints_before_first_token = 0

    async def checkpoint(self) -> None:
        if self.tokens:
            raise asyncio.CancelledError
        self.checkpoints_before_first_token += 1


async def test_a_cancel_at_a_checkpoint_stops_the_answer_after_one_token(
    redis: Redis, namespace: str, store: KnowledgeStore
) -> None:
    names = Names(namespace)
    await store.add_document("docs", "a.md", "Workers stop at checkpoints. " * 3, "markdown")
    job = Job("job-1", "s-1", "m-1", "alice", "rag", "Where do workers stop?")
    run = CancelAfterFirstToken(job=job, log=JobEventLog(redis, names, EventLogSettings(), "job-1"))

    with pytest.raises(asyncio.CancelledError):
        await RagPipeline(RagSettings(), redis, names).run(run)

    assert run.tokens == 1
    # One checkpoint after each of the five steps before execution, one before the first token.
    assert run.checkpoints_before_first_token == 6
