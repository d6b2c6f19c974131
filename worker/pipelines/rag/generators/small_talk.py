"""Answers to greetings and thanks, which need no sources."""

from __future__ import annotations

from shared.events import FINISH_STOP
from worker.pipelines.rag.generators import (
    Checkpoint,
    Emit,
    GenerationRequest,
    GenerationResult,
    emit_words,
)

GREETING_REPLY = "Hello! Ask me a question about the project's documents and I will cite them."


class SmallTalkGenerator:
    async def generate(
        self, request: GenerationRequest, emit: Emit, checkpoint: Checkpoint
    ) -> GenerationResult:
        await emit_words(GREETING_REPLY, emit)
        return GenerationResult(FINISH_STOP, [])
