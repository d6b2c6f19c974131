"""The pipelines a job can name, each turning a job into progress steps and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.job_run import JobRun


@dataclass(frozen=True, slots=True)
class PipelineResult:
    finish_reason: str
    citations: list[dict[str, Any]] = field(default_factory=list)


class PipelineError(Exception):
    """A failure a pipeline reports to the client as an ``error`` event with its own code."""

    def __init__(self, message: str, code: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        # When a try again may pass, if the cause said (a rate limit's Retry-After).
        self.retry_after_s = retry_after_s


class Pipeline(Protocol):
    async def run(self, run: JobRun) -> PipelineResult: ...
