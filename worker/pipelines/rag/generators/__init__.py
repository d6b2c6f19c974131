"""Generators write the answer from the retrieved passages, token by token, through ``emit``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.knowledge import Chunk
from worker.pipelines.rag.context import Turn

Emit = Callable[[str], Awaitable[None]]
# Raises when the job was cancelled; a generator that waits on something slow polls it.
Checkpoint = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk, numbered as the answer cites it: ``[number]``."""

    number: int
    project: str
    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    question: str
    query: str
    passages: list[Passage]
    history: list[Turn] = field(default_factory=list)
    simple_language: bool = False


@dataclass(frozen=True, slots=True)
class GenerationResult:
    finish_reason: str
    citations: list[dict[str, Any]]


class Generator(Protocol):
    async def generate(
        self, request: GenerationRequest, emit: Emit, checkpoint: Checkpoint
    ) -> GenerationResult:
        """Stream the answer through ``emit`` (which passes a checkpoint before each token)."""
        ...


def citation(passage: Passage, quotes: list[str]) -> dict[str, Any]:
    """The ``end`` event's record of one cited passage."""
    return {
        "id": passage.number,
        "project": passage.project,
        "documentId": passage.chunk.document_id,
        "document": passage.chunk.document,
        "chunkId": passage.chunk.id,
        "score": round(passage.score, 4),
        "quotes": quotes,
    }


def word_tokens(text: str) -> list[str]:
    """``text`` as streamed tokens: its words, each after the first with one leading space."""
    return [word if i == 0 else f" {word}" for i, word in enumerate(text.split())]


async def emit_words(text: str, emit: Emit) -> None:
    for token in word_tokens(text):
        await emit(token)
