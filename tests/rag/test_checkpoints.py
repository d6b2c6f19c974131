"""The pipeline stops at ``run.checkpoint()`` between steps and between tokens: a cancellation
raised there ends it before the next step or token."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.job import Job
from shared.knowledge import KnowledgeStore
from shared.names import Names
from shared.settings import RagSettings
from worker.pipelines.rag import RagPipeline


@dataclass
class CancelAfterFirstToken:
    """What the pipeline reports through (JobRun's surface), cancelled once a token is out."""

    job: Job
    tokens: int = 0
    trail: list[str] = field(default_factory=list)

    async def checkpoint(self) -> None:
        self.trail.append("checkpoint")
        if self.tokens:
            raise asyncio.CancelledError

    async def progress(self, step: str, message: str, **_: Any) -> None:
        self.trail.append(step)

    async def token(self, text: str) -> None:
        self.tokens += 1
        self.trail.append("token")

    def generating(self, generator: str) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


async def test_a_cancel_at_a_checkpoint_stops_the_answer_after_one_token(
    redis: Redis, namespace: str, store: KnowledgeStore
) -> None:
    await store.add_document("docs", "a.md", "Workers stop at checkpoints. " * 3, "markdown")
    run = CancelAfterFirstToken(
        Job("job-1", "s-1", "m-1", "alice", "rag", "Where do workers stop?")
    )

    with pytest.raises(asyncio.CancelledError):
        # A stand-in with JobRun's surface rather than a JobRun, so only the pipeline is tested.
        await RagPipeline(RagSettings(), redis, Names(namespace)).run(run)  # type: ignore[arg-type]

    assert run.tokens == 1
    # A checkpoint after each step before execution, then one before each token.
    assert run.trail == [
        "start", "checkpoint", "context", "checkpoint", "analyzing", "checkpoint",
        "planning", "checkpoint", "validation", "checkpoint", "execution",
        "checkpoint", "token", "checkpoint",
    ]  # fmt: skip
