"""Splitting a document's text into overlapping chunks of whole sentences.

A chunk holds whole sentences up to ``chunk_chars``; the next one starts with the last
sentences of the previous, up to ``overlap_chars``, so a passage that straddles a boundary is
still found whole in one chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! or ? followed by space, or at a paragraph break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9`*_-])")


@dataclass(frozen=True, slots=True)
class TextChunk:
    index: int
    text: str


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``; each paragraph ends a sentence, whatever its punctuation."""
    return [sentence for _, sentence in _paragraph_sentences(text)]


def _paragraph_sentences(text: str) -> list[tuple[int, str]]:
    """Each sentence with the number of its paragraph."""
    sentences: list[tuple[int, str]] = []
    for number, paragraph in enumerate(re.split(r"\n\s*\n", text)):
        flat = " ".join(paragraph.split())
        sentences.extend(
            (number, part.strip()) for part in _SENTENCE_END.split(flat) if part.strip()
        )
    return sentences


def _join(sentences: list[tuple[int, str]]) -> str:
    """Sentences back into text, keeping paragraph breaks so that a heading stays apart."""
    text = ""
    for i, (paragraph, sentence) in enumerate(sentences):
        if i:
            text += " " if sentences[i - 1][0] == paragraph else "\n\n"
        text += sentence
    return text


def chunk_text(text: str, *, chunk_chars: int, overlap_chars: int) -> list[TextChunk]:
    if overlap_chars >= chunk_chars:
        raise ValueError("the overlap must be smaller than the chunk")
    sentences = [
        (paragraph, piece)
        for paragraph, sentence in _paragraph_sentences(text)
        for piece in _fit(sentence, chunk_chars)
    ]
    chunks: list[TextChunk] = []
    current: list[tuple[int, str]] = []
    fresh = 0  # sentences in ``current`` that no earlier chunk holds
    for item in sentences:
        if current and len(_join([*current, item])) > chunk_chars:
            chunks.append(TextChunk(len(chunks), _join(current)))
            current = _tail(current, overlap_chars, room=chunk_chars - len(item[1]) - 2)
            fresh = 0
        current.append(item)
        fresh += 1
    if current and fresh:
        chunks.append(TextChunk(len(chunks), _join(current)))
    return chunks


def _tail(
    sentences: list[tuple[int, str]], overlap_chars: int, *, room: int
) -> list[tuple[int, str]]:
    """The last sentences of a chunk that fit in the overlap (and beside the next sentence)."""
    tail: list[tuple[int, str]] = []
    size = 0
    for item in reversed(sentences):
        size += len(item[1]) + 2
        if size > min(overlap_chars, room):
            break
        tail.insert(0, item)
    return tail


def _fit(sentence: str, chunk_chars: int) -> list[str]:
    """A sentence longer than a chunk, cut at word boundaries."""
    if len(sentence) <= chunk_chars:
        return [sentence]
    pieces: list[str] = []
    words: list[str] = []
    size = 0
    for word in sentence.split(" "):
        if words and size + 1 + len(word) > chunk_chars:
            pieces.append(" ".join(words))
            words, size = [], 0
        words.append(word[:chunk_chars])
        size += len(words[-1]) + 1
    if words:
        pieces.append(" ".join(words))
    return pieces
