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
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        sentences.extend(part.strip() for part in _SENTENCE_END.split(flat) if part.strip())
    return sentences


def chunk_text(text: str, *, chunk_chars: int, overlap_chars: int) -> list[TextChunk]:
    if overlap_chars >= chunk_chars:
        raise ValueError("the overlap must be smaller than the chunk")
    sentences = [piece for s in split_sentences(text) for piece in _fit(s, chunk_chars)]
    chunks: list[TextChunk] = []
    current: list[str] = []
    size = 0
    fresh = 0  # sentences in ``current`` that no earlier chunk holds
    for sentence in sentences:
        if current and size + 1 + len(sentence) > chunk_chars:
            chunks.append(TextChunk(len(chunks), " ".join(current)))
            current = _tail(current, overlap_chars, room=chunk_chars - len(sentence) - 1)
            size = sum(len(s) + 1 for s in current)
            fresh = 0
        current.append(sentence)
        size += len(sentence) + 1
        fresh += 1
    if current and fresh:
        chunks.append(TextChunk(len(chunks), " ".join(current)))
    return chunks


def _tail(sentences: list[str], overlap_chars: int, *, room: int) -> list[str]:
    """The last sentences of a chunk that fit in the overlap (and beside the next sentence)."""
    tail: list[str] = []
    size = 0
    for sentence in reversed(sentences):
        size += len(sentence) + 1
        if size > min(overlap_chars, room):
            break
        tail.insert(0, sentence)
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
