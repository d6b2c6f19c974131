"""The ``extractive`` generator: needs no model. It picks the sentences of the passages that
share the most terms with the query, keeps them in reading order (passage rank, then position),
and cites each ``[n]``. With ``simple_language`` it prefers short sentences and says less."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from shared.events import FINISH_STOP
from shared.knowledge.chunking import split_sentences
from worker.pipelines.rag.generators import (
    Checkpoint,
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
# A sentence that ends without one of these is a heading or a list label.
_SENTENCE_ENDINGS = (".", "!", "?", ")", '"', "'", "`")


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
        sentences = self._sentences(request)
        # A query term found in few of the passages' sentences says more than a common one.
        frequency = Counter(t for _, _, _, found in sentences for t in found & query)
        weight = {t: math.log(1 + len(sentences) / n) for t, n in frequency.items()}
        candidates: list[_Candidate] = []
        for passage, position, sentence, found in sentences:
            shared = found & query
            if not shared:
                continue
            # Ties go to the higher-ranked passage; simple language demotes long sentences.
            score = sum(weight[t] for t in shared) - passage.number / 100
            if request.simple_language and len(sentence.split()) > _SHORT_WORDS:
                score -= 1
            candidates.append(_Candidate(passage, position, sentence, score))
        limit = self.simple_max_sentences if request.simple_language else self.max_sentences
        best = sorted(candidates, key=lambda c: -c.score)[:limit]
        return sorted(best, key=lambda c: (c.passage.number, c.position))

    @staticmethod
    def _sentences(request: GenerationRequest) -> list[tuple[Passage, int, str, set[str]]]:
        """The answerable sentences of the passages, each once, with their terms."""
        found: list[tuple[Passage, int, str, set[str]]] = []
        seen: set[str] = set()
        for passage in request.passages:
            for position, sentence in enumerate(split_sentences(passage.chunk.text)):
                if (
                    len(sentence.split()) < _MIN_WORDS
                    or not _PROSE.search(sentence)
                    or not sentence.endswith(_SENTENCE_ENDINGS)
                    or sentence in seen  # overlapping chunks repeat sentences
                ):
                    continue
                seen.add(sentence)
                found.append((passage, position, sentence, terms(sentence)))
        return found

    async def generate(
        self, request: GenerationRequest, emit: Emit, checkpoint: Checkpoint
    ) -> GenerationResult:
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
