"""The ``extractive`` generator: needs no model. It picks the sentences of the passages that
share the most terms with the query, keeps them in reading order (passage rank, then position),
and cites each ``[n]``. With ``simple_language`` it prefers short sentences and says less."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.events import FINISH_STOP
from shared.knowledge.chunking import split_sentences
from worker.pipelines.rag.generators import (
    Emit,
    GenerationRequest,
    GenerationResult,
    Passage,
    citation,
    emit_words,
)
from worker.pipelines.rag.terms import terms

NO_ANSWER = "The sources hold no passage that answers this question."
# A sentence shorter than this is a heading or a fragment, not an answer.
_MIN_WORDS = 4
_SHORT_WORDS = 20
_PROSE = re.compile(r"[A-Za-z]")


@dataclass(frozen=True, slots=True)
class _Candidate:
    passage: Passage
    position: int
    sentence: str
    score: float


@dataclass(frozen=True, slots=True)
class ExtractiveGenerator:
    max_sentences: int = 4
    simple_max_sentences: int = 2

    def choose(self, request: GenerationRequest) -> list[_Candidate]:
        query = terms(request.query)
        candidates: list[_Candidate] = []
        seen: set[str] = set()
        for passage in request.passages:
            for position, sentence in enumerate(split_sentences(passage.chunk.text)):
                count = len(sentence.split())
                if count < _MIN_WORDS or not _PROSE.search(sentence) or sentence in seen:
                    continue
                seen.add(sentence)  # overlapping chunks repeat sentences
                shared = len(query & terms(sentence))
                if not shared:
                    continue
                # Ties go to the higher-ranked passage; simple language demotes long sentences.
                score = shared + passage.score / 100
                if request.simple_language and count > _SHORT_WORDS:
                    score -= 1
                candidates.append(_Candidate(passage, position, sentence, score))
        limit = self.simple_max_sentences if request.simple_language else self.max_sentences
        best = sorted(candidates, key=lambda c: -c.score)[:limit]
        return sorted(best, key=lambda c: (c.passage.number, c.position))

    async def generate(self, request: GenerationRequest, emit: Emit) -> GenerationResult:
        chosen = self.choose(request)
        if not chosen:
            await emit_words(NO_ANSWER, emit)
            return GenerationResult(FINISH_STOP, [])
        quotes: dict[int, list[str]] = {}
        for candidate in chosen:
            quotes.setdefault(candidate.passage.number, []).append(candidate.sentence)
        answer = " ".join(f"{c.sentence} [{c.passage.number}]" for c in chosen)
        await emit_words(answer, emit)
        by_number = {c.passage.number: c.passage for c in chosen}
        citations = [citation(by_number[n], quotes[n]) for n in sorted(quotes)]
        return GenerationResult(FINISH_STOP, citations)
