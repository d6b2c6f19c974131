"""Retrieval behind a small interface: :class:`Retriever` is all the pipeline knows, so a
vector store can be added beside BM25 without touching it.

:class:`Bm25Retriever` keeps one bm25s index per project in memory and checks the project's
index version on every search (one Redis GET); when another process changed the collection,
it reloads the chunks and rebuilds, so every worker answers from the same collection.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import bm25s
import numpy as np
import Stemmer

from shared.knowledge.store import Chunk, KnowledgeStore, Snapshot


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    index_version: int
    chunks_searched: int


class Retriever(Protocol):
    async def search(self, project: str, query: str, k: int) -> SearchResult:
        """The ``k`` best chunks of ``project`` for ``query``, best first, each with a score."""
        ...


class Bm25Index:
    """A BM25 index over one snapshot of a collection."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.version = snapshot.version
        self.chunks = snapshot.chunks
        self._tokenizer = bm25s.tokenization.Tokenizer(
            stemmer=Stemmer.Stemmer("english"), stopwords="en"
        )
        self._bm25 = bm25s.BM25()
        if self.chunks:
            # The document's name is indexed with each chunk: it often names the topic.
            texts = [f"{_title(c.document)}\n{c.text}" for c in self.chunks]
            tokens = self._tokenizer.tokenize(texts, return_as="tuple", show_progress=False)
            self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[Hit]:
        if not self.chunks or k < 1:
            return []
        ids = self._tokenizer.tokenize(
            [query], update_vocab=False, return_as="ids", show_progress=False
        )
        if not ids or not ids[0]:
            return []
        k = min(k, len(self.chunks))
        found, scores = self._bm25.retrieve(ids, k=k, show_progress=False, n_threads=1)
        hits = [
            Hit(self.chunks[int(i)], float(s))
            for i, s in zip(np.asarray(found)[0], np.asarray(scores)[0], strict=True)
            if s > 0
        ]
        # Equal scores keep the collection's stable order, so every worker ranks alike.
        return sorted(hits, key=lambda h: -h.score)


class Bm25Retriever:
    def __init__(self, store: KnowledgeStore, max_indexes: int = 64) -> None:
        self._store = store
        # Least recently searched last out: a worker serving many projects stays bounded.
        self._indexes: OrderedDict[str, Bm25Index] = OrderedDict()
        self._max_indexes = max_indexes
        self._lock = asyncio.Lock()

    async def search(self, project: str, query: str, k: int) -> SearchResult:
        index = await self.index(project)
        hits = await asyncio.to_thread(index.search, query, k)
        return SearchResult(hits, index.version, len(index.chunks))

    async def index(self, project: str) -> Bm25Index:
        """The project's index, rebuilt when its version has moved since it was built."""
        version = await self._store.index_version(project)
        index = self._indexes.get(project)
        if index is not None and index.version == version:
            self._indexes.move_to_end(project)
            return index
        async with self._lock:
            index = self._indexes.get(project)
            if index is None or index.version != version:
                snapshot = await self._store.snapshot(project)
                index = await asyncio.to_thread(Bm25Index, snapshot)
                self._indexes[project] = index
            self._indexes.move_to_end(project)
            while len(self._indexes) > self._max_indexes:
                self._indexes.popitem(last=False)
            return index


def _title(document: str) -> str:
    stem = document.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.replace("-", " ").replace("_", " ")
