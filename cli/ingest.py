"""``chatstream ingest DIR --project NAME``: add a directory's Markdown, text and HTML files to a
knowledge collection on the real Redis (``REDIS_URL``), with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from tqdm import tqdm

from shared.knowledge import knowledge_store, valid_project_name
from shared.knowledge.ingest import documents_in, ingest_directory
from shared.names import DEFAULT_NAMESPACE
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings, RagSettings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ingest", help="add a directory of Markdown, text and HTML files to a project"
    )
    parser.add_argument("directory", type=Path, help="the directory to read (recursively)")
    parser.add_argument("--project", required=True, help="the knowledge collection to fill")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    project: str = args.project
    if not directory.is_dir():
        print(f"chatstream ingest: {directory} is not a directory")
        return 2
    if not valid_project_name(project):
        print(f"chatstream ingest: {project!r} is not a valid project name")
        return 2
    # Only Redis is needed here, so AMQP_URL is not required as the services require it.
    connections = ConnectionSettings(
        redis_url=os.environ.get("REDIS_URL") or None,
        namespace=os.environ.get("CHATSTREAM_NAMESPACE", DEFAULT_NAMESPACE),
    )
    if connections.redis_url is None:
        print("chatstream ingest: set REDIS_URL (embedded mode ingests DOCS_DIR at start-up)")
        return 2
    return asyncio.run(_ingest(connections, RagSettings.from_env(), directory, project))


async def _ingest(
    connections: ConnectionSettings, rag: RagSettings, directory: Path, project: str
) -> int:
    redis = connect_redis(connections)
    try:
        store = knowledge_store(redis, connections.names, rag)
        with tqdm(total=len(documents_in(directory)), unit="doc", desc=project) as bar:
            documents = await ingest_directory(
                store, project, directory, on_document=lambda _: bar.update()
            )
    finally:
        await redis.aclose()
    chunks = sum(d.chunks for d in documents)
    print(f"ingested {len(documents)} documents ({chunks} chunks) into {project!r}")
    return 0
