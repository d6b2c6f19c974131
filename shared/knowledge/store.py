"""Knowledge collections in Redis: documents, their chunks, and an index version per project.

Every change to a collection bumps its index version in the same transaction, so a worker that
reads the version and the chunks together (:meth:`KnowledgeStore.snapshot`) always holds a
consistent pair, and knows to rebuild its index when the version moves.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from redis.exceptions import WatchError

from shared.knowledge.chunking import TextChunk, chunk_text
from shared.knowledge.text import DocumentFormat, to_text
from shared.names import Names
from shared.redis_client import RedisClient
from shared.settings import RagSettings

T = TypeVar("T")

_WATCH_ATTEMPTS = 10

# Parsing is pure Python: on the event loop it would stall every stream for its duration. One
# thread, not one per upload, so that concurrent uploads queue instead of each taking a share
# of the GIL from the loop.
_parsing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatstream-documents")


class KnowledgeError(ValueError):
    """A stored document or chunk that chatstream cannot read."""


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    project: str
    name: str
    format: str
    chunks: int
    chars: int
    created_at_ms: int

    def to_api(self) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created_at_ms / 1000))
        return {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "format": self.format,
            "chunks": self.chunks,
            "chars": self.chars,
            "createdAt": f"{created}.{self.created_at_ms % 1000:03d}Z",
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    document_id: str
    document: str
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A collection's chunks as of one index version."""

    version: int
    chunks: list[Chunk]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A document's text and chunks, ready to store."""

    format: DocumentFormat
    text: str
    pieces: list[TextChunk]


@dataclass(frozen=True, slots=True)
class ChunkingSettings:
    chunk_chars: int = 800
    overlap_chars: int = 160


class KnowledgeStore:
    """The documents and chunks of every project of one namespace."""

    def __init__(
        self, redis: RedisClient, names: Names, chunking: ChunkingSettings | None = None
    ) -> None:
        self._redis = redis
        self._names = names
        self._chunking = chunking or ChunkingSettings()

    async def parse(self, content: str, document_format: DocumentFormat) -> ParsedDocument:
        """A document's text and chunks, worked out off the event loop. Raises
        :class:`~shared.knowledge.text.DocumentRefused` for a document nested too deeply or
        too long to parse."""
        return await asyncio.get_running_loop().run_in_executor(
            _parsing, _parse, content, document_format, self._chunking
        )

    async def add_document(
        self, project: str, name: str, content: str, document_format: DocumentFormat
    ) -> Document:
        """Parse and store a document (see :meth:`parse` and :meth:`add_parsed`)."""
        return await self.add_parsed(project, name, await self.parse(content, document_format))

    async def add_parsed(self, project: str, name: str, parsed: ParsedDocument) -> Document:
        """Store a document and its chunks. A document of the same name is replaced, so
        ingesting a directory twice leaves one copy of each file."""
        document = Document(
            id=uuid.uuid4().hex,
            project=project,
            name=name,
            format=parsed.format,
            chunks=len(parsed.pieces),
            chars=len(parsed.text),
            created_at_ms=int(time.time() * 1000),
        )
        chunks = [
            Chunk(f"{document.id}:{piece.index}", document.id, name, piece.index, piece.text)
            for piece in parsed.pieces
        ]
        # Optimistic: a concurrent change to the documents retries, so one copy of a name wins.
        for _ in range(_WATCH_ATTEMPTS):
            try:
                await self._replace(project, document, chunks)
                return document
            except WatchError:
                continue
        raise KnowledgeError(f"the project {project!r} kept changing; try again")

    async def _replace(self, project: str, document: Document, chunks: list[Chunk]) -> None:
        documents_key = self._names.project_documents(project)
        chunks_key = self._names.project_chunks(project)
        async with self._redis.pipeline(transaction=True) as tx:
            await tx.watch(documents_key)
            replaced = [
                old
                for old in map(_decode_document, await tx.hvals(documents_key))
                if old.name == document.name
            ]
            tx.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
            for old in replaced:
                tx.hdel(documents_key, old.id)
                if old.chunks:
                    tx.hdel(chunks_key, *_chunk_ids(old))
            tx.hset(documents_key, document.id, json.dumps(asdict(document)))
            for chunk in chunks:
                tx.hset(chunks_key, chunk.id, json.dumps(asdict(chunk)))
            tx.incr(self._names.project_index_version(project))
            await tx.execute()

    async def documents(self, project: str) -> list[Document]:
        """The project's documents, oldest first."""
        raw = await self._redis.hvals(self._names.project_documents(project))
        documents = [_decode_document(value) for value in raw]
        return sorted(documents, key=lambda d: (d.created_at_ms, d.id))

    async def delete_document(self, project: str, document_id: str) -> bool:
        raw = await self._redis.hget(self._names.project_documents(project), document_id)
        if raw is None:
            return False
        document = _decode(Document, raw)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hdel(self._names.project_documents(project), document_id)
            if document.chunks:
                tx.hdel(self._names.project_chunks(project), *_chunk_ids(document))
            tx.incr(self._names.project_index_version(project))
            await tx.execute()
        return True

    async def index_version(self, project: str) -> int:
        return int(await self._redis.get(self._names.project_index_version(project)) or 0)

    async def snapshot(self, project: str) -> Snapshot:
        """The version and the chunks, read in one transaction, in a stable order."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.get(self._names.project_index_version(project))
            tx.hvals(self._names.project_chunks(project))
            version, raw_chunks = await tx.execute()
        chunks = sorted(
            (_decode(Chunk, value) for value in raw_chunks), key=lambda c: (c.document, c.index)
        )
        return Snapshot(int(version or 0), chunks)

    async def chunk_count(self, project: str) -> int:
        return int(await self._redis.hlen(self._names.project_chunks(project)))


def knowledge_store(redis: RedisClient, names: Names, rag: RagSettings) -> KnowledgeStore:
    """The store with the chunk sizes of the settings, as every service builds it."""
    return KnowledgeStore(redis, names, ChunkingSettings(rag.chunk_chars, rag.chunk_overlap_chars))


def _parse(
    content: str, document_format: DocumentFormat, chunking: ChunkingSettings
) -> ParsedDocument:
    text = to_text(content, document_format)
    pieces = chunk_text(
        text, chunk_chars=chunking.chunk_chars, overlap_chars=chunking.overlap_chars
    )
    return ParsedDocument(document_format, text, pieces)


def _chunk_ids(document: Document) -> list[str]:
    return [f"{document.id}:{i}" for i in range(document.chunks)]


def _decode_document(raw: bytes | str) -> Document:
    return _decode(Document, raw)


def _decode(kind: type[T], raw: bytes | str) -> T:
    try:
        return kind(**json.loads(raw))
    except (ValueError, TypeError) as e:
        raise KnowledgeError(f"a stored {kind.__name__.lower()} is malformed: {e}") from e
