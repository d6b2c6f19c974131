"""Pure logic: documents to text, chunking with overlap, and the extractive answer."""

from __future__ import annotations

import asyncio
import itertools

from shared.knowledge import Chunk
from shared.knowledge.chunking import chunk_text, split_sentences
from shared.knowledge.text import to_text
from worker.pipelines.rag.generators import GenerationRequest, Passage
from worker.pipelines.rag.generators.extractive import ExtractiveGenerator


def test_markdown_and_html_become_the_text_a_reader_sees() -> None:
    markdown = "# Title\n\nSome `code`, and **bold** text.\n\n- one item\n- two"
    assert to_text(markdown, "markdown") == (
        "Title\n\nSome code, and bold text.\n\none item\n\ntwo"
    )
    html = "<div><script>x()</script><p>Hello <a href='#'>world</a>.</p><p>Next.</p></div>"
    assert to_text(html, "html") == "Hello world.\n\nNext."


def test_chunks_hold_whole_sentences_and_overlap_their_neighbours() -> None:
    sentences = [f"Sentence number {i} says something useful." for i in range(30)]
    chunks = chunk_text(" ".join(sentences), chunk_chars=200, overlap_chars=90)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.text) <= 200
        assert all(s in sentences for s in split_sentences(chunk.text))
    for previous, following in itertools.pairwise(chunks):
        first_of_next = split_sentences(following.text)[0]
        assert first_of_next in split_sentences(previous.text)
    covered = {s for c in chunks for s in split_sentences(c.text)}
    assert covered == set(sentences)


def test_a_sentence_longer_than_a_chunk_is_cut_at_words() -> None:
    chunks = chunk_text("word " * 100, chunk_chars=120, overlap_chars=20)
    assert all(len(c.text) <= 120 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) >= 100


async def no_cancel() -> None:
    return None


def _passage(number: int, text: str) -> Passage:
    return Passage(number, "p", Chunk(f"d:{number}", "d", "doc.md", number, text), 1.0)


def test_extractive_answer_cites_sentences_in_reading_order_and_shortens_for_simple() -> None:
    passages = [
        _passage(1, "Workers reload the index when its version moves. Unrelated words here."),
        _passage(
            2,
            "The index version is bumped in the same transaction as every change to the "
            "collection, which is why every worker that reads it notices at once and rebuilds. "
            "Each worker checks the index version.",
        ),
    ]
    tokens: list[str] = []

    async def emit(text: str) -> None:
        tokens.append(text)

    request = GenerationRequest("index version", "index version", passages)
    result = asyncio.run(ExtractiveGenerator().generate(request, emit, no_cancel))
    answer = "".join(tokens)
    assert answer.startswith("Workers reload the index when its version moves. [1]")
    assert "Unrelated" not in answer
    assert [c["id"] for c in result.citations] == [1, 2]

    tokens.clear()
    simple = GenerationRequest("index version", "index version", passages, simple_language=True)
    asyncio.run(ExtractiveGenerator().generate(simple, emit, no_cancel))
    short = "".join(tokens)
    assert "transaction" not in short and short.count("[") <= 2
