"""``chatstream ingest DIR --project NAME``: make a knowledge collection on the real Redis
(``REDIS_URL``) hold a directory's Markdown, text and HTML files, with a progress bar of chunks.

Skipped and refused files are listed on stderr. Exit status: 0 when every readable file was
ingested, 1 when a file was refused, the directory holds nothing to ingest or Redis failed, 2
for a usage error."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from cli.collection import fail, run_on_store
from shared.knowledge import KnowledgeStore
from shared.knowledge.ingest import NothingToIngest, ingest_directory

COMMAND = "ingest"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        COMMAND, help="make a project hold a directory of Markdown, text and HTML files"
    )
    parser.add_argument("directory", type=Path, help="the directory to read (recursively)")
    parser.add_argument("--project", required=True, help="the knowledge collection to fill")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    project: str = args.project
    if not directory.is_dir():
        fail(COMMAND, f"{directory} is not a directory")
        return 2

    async def ingest(store: KnowledgeStore) -> int:
        with tqdm(unit="chunk", desc=project) as bar:
            try:
                report = await ingest_directory(
                    store, project, directory, on_document=lambda d: bar.update(d.chunks)
                )
            except NothingToIngest as e:
                bar.close()
                fail(COMMAND, f"{e}; the project is unchanged")
                return 1
        for name in report.skipped:
            fail(COMMAND, f"skipped {name}: not Markdown, text or HTML")
        for refusal in report.refused:
            fail(COMMAND, f"refused {refusal.name}: {refusal.reason}")
        chunks = sum(d.chunks for d in report.added)
        print(
            f"ingested {len(report.added)} documents ({chunks} chunks) into {project!r}; "
            f"removed {len(report.removed)}"
        )
        return 1 if report.refused else 0

    return run_on_store(COMMAND, project, ingest)
