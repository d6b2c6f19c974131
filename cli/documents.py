"""``chatstream documents list|delete --project NAME``: the documents of a knowledge collection
on the real Redis (``REDIS_URL``), as the operator sees them, public projects included."""

from __future__ import annotations

import argparse

from cli.collection import fail, run_on_store
from shared.knowledge import KnowledgeStore

COMMAND = "documents"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(COMMAND, help="list or delete a project's documents")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="one line per document, oldest first")
    listing.add_argument("--project", required=True, help="the knowledge collection")
    listing.set_defaults(run=run_list)
    delete = actions.add_parser("delete", help="remove documents by name (or id)")
    delete.add_argument("--project", required=True, help="the knowledge collection")
    delete.add_argument("names", nargs="+", metavar="NAME", help="a document's name or id")
    delete.set_defaults(run=run_delete)


def run_list(args: argparse.Namespace) -> int:
    async def show(store: KnowledgeStore) -> int:
        for document in await store.documents(args.project):
            api = document.to_api()
            print(f"{api['name']}\t{api['chunks']} chunks\t{api['createdAt']}\t{api['id']}")
        return 0

    return run_on_store(COMMAND, args.project, show)


def run_delete(args: argparse.Namespace) -> int:
    async def delete(store: KnowledgeStore) -> int:
        documents = await store.documents(args.project)
        status = 0
        for wanted in args.names:
            matches = [d for d in documents if wanted in (d.name, d.id)]
            if not matches:
                fail(COMMAND, f"no document {wanted!r} in {args.project!r}")
                status = 1
            for document in matches:
                if await store.delete_document(args.project, document.id):
                    print(f"deleted {document.name}")
        return status

    return run_on_store(COMMAND, args.project, delete)
