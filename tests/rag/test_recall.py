"""The labelled question set: BM25 over the project's own docs finds each answer's file in the
top three chunks for at least 90% of the questions."""

from __future__ import annotations

from shared.knowledge import Bm25Retriever, KnowledgeStore
from shared.knowledge.ingest import ingest_directory
from tests.rag.conftest import DOCS_DIR, labelled_questions

MIN_RECALL_AT_3 = 0.9


async def test_recall_at_3_on_the_labelled_questions_is_at_least_0_9(
    store: KnowledgeStore,
) -> None:
    report = await ingest_directory(store, "docs", DOCS_DIR)
    names = {d.name for d in report.added}
    questions = labelled_questions()
    assert len(questions) >= 20
    assert {q["file"] for q in questions} <= names, "every labelled file is in docs/"
    retriever = Bm25Retriever(store)
    misses = []
    for item in questions:
        result = await retriever.search("docs", item["question"], 3)
        found = [hit.chunk.document for hit in result.hits]
        if item["file"] not in found:
            misses.append((item["question"], item["file"], found))
    recall = 1 - len(misses) / len(questions)
    assert recall >= MIN_RECALL_AT_3, misses
