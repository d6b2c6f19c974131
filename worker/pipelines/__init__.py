"""The pipelines a job can name, each turning a job into progress steps and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.job_run import JobRun


@dataclass(frozen=True, slots=True)
class PipelineResult:
    finish_reason: str
    citations: list[dict[str, Any]] = field(default_factory=list)


class Pipeline(Protocol):
    async def run(self, run: JobRun) -> PipelineResult: ...
