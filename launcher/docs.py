"""``make run`` answers questions about chatstream itself: with the embedded transports the
knowledge store lives in this process, so the project's docs (``DOCS_DIR``) are ingested into
the default project at start-up. With real servers, ``chatstream ingest`` does it once for
every worker (``make stack``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.knowledge import knowledge_store
from shared.knowledge.ingest import NothingToIngest, ingest_directory
from shared.logging import get_logger
from shared.redis_client import RedisClient
from shared.settings import WorkerSettings

log = get_logger(__name__)


async def ingest_docs(redis: RedisClient, settings: WorkerSettings) -> None:
    """Ingest ``settings.rag.docs_dir``, when set, into the default project."""
    rag = settings.rag
    if not rag.docs_dir:
        return
    directory = Path(rag.docs_dir)
    if not await asyncio.to_thread(directory.is_dir):
        log.warning("docs.missing", docs_dir=rag.docs_dir)
        return
    store = knowledge_store(redis, settings.connections.names, rag)
    try:
        report = await ingest_directory(store, rag.default_project, directory)
    except NothingToIngest:
        log.warning("docs.empty", docs_dir=rag.docs_dir)
        return
    for refusal in report.refused:
        log.warning("docs.refused", document=refusal.name, reason=refusal.reason)
    log.info("docs.ingested", project=rag.default_project, documents=len(report.added))
