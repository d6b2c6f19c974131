"""The ``planning`` step: whether to retrieve, from which project, how much, and who writes."""

from __future__ import annotations

from dataclasses import dataclass

from worker.pipelines.rag.analysis import CHITCHAT, GREETING, Analysis

# The generator that answers small talk without sources.
SMALL_TALK = "small_talk"


@dataclass(frozen=True, slots=True)
class Plan:
    retrieve: bool
    project: str
    top_k: int
    generator: str
    simple_language: bool

    def metadata(self) -> dict[str, object]:
        return {
            "retrieve": self.retrieve,
            "project": self.project,
            "topK": self.top_k,
            "generator": self.generator,
            "simpleLanguage": self.simple_language,
        }


def make_plan(
    analysis: Analysis, *, project: str, top_k: int, generator: str, simple_language: bool
) -> Plan:
    if analysis.intent in (GREETING, CHITCHAT):
        return Plan(False, project, 0, SMALL_TALK, simple_language)
    # A short answer needs fewer passages to choose from.
    k = max(2, top_k // 2) if simple_language else top_k
    return Plan(True, project, k, generator, simple_language)
