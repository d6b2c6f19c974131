"""The ``echo`` pipeline: the eight progress steps, then the input back word by word.

It exists for demos, tests and load benchmarks, so it is cheap and exact: the tokens,
concatenated, are the input's words joined by single spaces.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared import events
from worker.job_run import JobRun
from worker.pipelines import PipelineResult

_STEP_MESSAGES = {
    "start": "Starting",
    "context": "Loading the conversation",
    "analyzing": "Reading the message",
    "planning": "Planning the answer",
    "validation": "Checking the plan",
    "execution": "Writing the answer",
    "memory": "Saving the conversation",
    "completion": "Done",
}


def echo_tokens(text: str) -> list[str]:
    """The words of ``text``, each after the first carrying its single leading space."""
    words = text.split()
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


@dataclass(frozen=True, slots=True)
class EchoPipeline:
    token_delay_ms: int

    async def run(self, run: JobRun) -> PipelineResult:
        tokens = echo_tokens(run.job.text)
        for step in events.PROGRESS_STEPS:
            metadata: dict[str, object] = {"pipeline": "echo"}
            if step == "planning":
                metadata["tokens"] = len(tokens)
            await run.progress(step, _STEP_MESSAGES[step], metadata=metadata)
            if step == "execution":
                with run.generating("echo"):
                    await self._stream(run, tokens)
        return PipelineResult(finish_reason=events.FINISH_STOP)

    async def _stream(self, run: JobRun, tokens: list[str]) -> None:
        delay_s = self.token_delay_ms / 1000
        for i, token in enumerate(tokens):
            if i and delay_s:
                await asyncio.sleep(delay_s)
            await run.token(token)
