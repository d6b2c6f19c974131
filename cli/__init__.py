"""The ``chatstream`` command. Each subcommand lives in a module of its own that exposes
``register(subparsers)``; this module only dispatches."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import chat, documents, ingest
from shared.version import chatstream_version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatstream", description="chatstream tools")
    parser.add_argument("--version", action="version", version=f"chatstream {chatstream_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (ingest, documents, chat):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))
