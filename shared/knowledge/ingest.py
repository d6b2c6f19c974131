"""Ingesting a directory of Markdown, text and HTML files into a project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shared.knowledge.store import Document, KnowledgeStore
from shared.knowledge.text import format_of


def documents_in(directory: Path) -> list[Path]:
    """The files under ``directory`` the ingester reads, in a stable order."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and format_of(path) is not None and not path.name.startswith(".")
    )


async def ingest_directory(
    store: KnowledgeStore,
    project: str,
    directory: Path,
    on_document: Callable[[Document], object] | None = None,
) -> list[Document]:
    """Add every readable file of ``directory`` to ``project``, named by its relative path."""
    added: list[Document] = []
    for path in documents_in(directory):
        document_format = format_of(path)
        assert document_format is not None
        content = path.read_text(encoding="utf-8", errors="replace")
        name = path.relative_to(directory).as_posix()
        document = await store.add_document(project, name, content, document_format)
        added.append(document)
        if on_document is not None:
            on_document(document)
    return added
