"""Knowledge collections ("projects"): documents chunked and stored in Redis, a BM25 index per
project that every worker keeps in step with the collection, and who may read or write each."""

from shared.knowledge.registry import can_read, can_write, claim, valid_project_name
from shared.knowledge.retrieval import Bm25Retriever, Hit, Retriever, SearchResult
from shared.knowledge.store import (
    Chunk,
    ChunkingSettings,
    Document,
    KnowledgeStore,
    knowledge_store,
)
from shared.knowledge.text import DocumentRefused

__all__ = [
    "Bm25Retriever",
    "Chunk",
    "ChunkingSettings",
    "Document",
    "DocumentRefused",
    "Hit",
    "KnowledgeStore",
    "Retriever",
    "SearchResult",
    "can_read",
    "can_write",
    "claim",
    "knowledge_store",
    "valid_project_name",
]
