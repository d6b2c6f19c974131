"""The agent/RAG pipeline: answers from a project's documents, citing them (docs/rag.md)."""

from worker.pipelines.rag.context import HistoryReader, NoHistory
from worker.pipelines.rag.pipeline import RagPipeline

__all__ = ["HistoryReader", "NoHistory", "RagPipeline"]
