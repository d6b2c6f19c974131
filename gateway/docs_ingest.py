"""``make run``: in embedded mode the store lives in this process, so the project's own docs are
ingested here at start-up (``DOCS_DIR``) into the default project. With real servers,
``chatstream ingest`` does it once for every worker (``make stack``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway import appkeys
from shared.knowledge import knowledge_store
from shared.knowledge.ingest import ingest_directory
from shared.logging import get_logger

log = get_logger(__name__)


async def ingest_docs(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    rag = settings.rag
    if settings.connections.embedded and rag.docs_dir:
        directory = Path(rag.docs_dir)
        if await asyncio.to_thread(directory.is_dir):
            store = knowledge_store(app[appkeys.REDIS], settings.connections.names, rag)
            documents = await ingest_directory(store, rag.default_project, directory)
            log.info("docs.ingested", project=rag.default_project, documents=len(documents))
        else:
            log.warning("docs.missing", docs_dir=rag.docs_dir)
    yield
