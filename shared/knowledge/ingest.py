"""Ingesting a directory of Markdown, text and HTML files into a project, so that the project
then holds exactly the directory's readable documents.

Every file is accounted for: read and stored, skipped (a suffix the ingester does not read), or
refused (binary, not UTF-8, or a document the parser refuses). Hidden files are ignored. The
directory is read in full before the collection changes, so a directory with nothing to ingest
leaves the collection as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.knowledge.store import Document, KnowledgeStore
from shared.knowledge.text import MAX_DOCUMENT_CHARS, DocumentFormat, DocumentRefused, format_of

# UTF-8 takes at most four bytes a character, so no larger file can be under the limit.
MAX_FILE_BYTES = 4 * MAX_DOCUMENT_CHARS


class NothingToIngest(ValueError):
    """A directory that holds no document the ingester reads."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str
    format: DocumentFormat
    content: str


@dataclass(frozen=True, slots=True)
class Refusal:
    name: str
    reason: str


@dataclass(slots=True)
class IngestReport:
    """What an ingest did with each file, and which stale documents it removed."""

    added: list[Document] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    removed: list[Document] = field(default_factory=list)


@dataclass(slots=True)
class _Scan:
    sources: list[SourceFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def read_source(path: Path) -> str:
    """The text of a document file, or :class:`DocumentRefused` saying why it is not text.

    Binary means a NUL byte, which no text file holds and nearly every binary does; a file that
    is not valid UTF-8 is refused too, rather than read with replacement characters."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DocumentRefused(f"larger than {MAX_FILE_BYTES} bytes")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise DocumentRefused("a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentRefused(f"not UTF-8 text (byte {e.start})") from e


def _scan(directory: Path) -> _Scan:
    scan = _Scan()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        name = relative.as_posix()
        document_format = format_of(path)
        if document_format is None:
            scan.skipped.append(name)
            continue
        try:
            scan.sources.append(SourceFile(name, document_format, read_source(path)))
        except DocumentRefused as e:
            scan.refused.append(Refusal(name, str(e)))
    return scan


async def ingest_directory(
    store: KnowledgeStore,
    project: str,
    directory: Path,
    on_document: Callable[[Document], object] | None = None,
) -> IngestReport:
    """Make ``project`` hold the readable files of ``directory``, each named by its relative
    path: every file is added (replacing its earlier version), and the documents whose file is
    gone or no longer readable are removed. Raises :class:`NothingToIngest`, changing nothing,
    when the directory holds no readable document."""
    scan = await asyncio.to_thread(_scan, directory)
    if not scan.sources:
        raise NothingToIngest(f"{directory} holds no document to ingest")
    report = IngestReport(skipped=scan.skipped, refused=scan.refused)
    for source in scan.sources:
        try:
            document = await store.add_document(project, source.name, source.content, source.format)
        except DocumentRefused as e:
            report.refused.append(Refusal(source.name, str(e)))
            continue
        report.added.append(document)
        if on_document is not None:
            on_document(document)
    kept = {document.name for document in report.added}
    for stale in await store.documents(project):
        if stale.name not in kept and await store.delete_document(project, stale.id):
            report.removed.append(stale)
    return report
