"""The ``chatstream`` command. Each subcommand lives in a module of its own that exposes
``register(subparsers)``; this module only dispatches."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, imported only when present so that each can land on its own.
SUBCOMMAND_MODULES = ("cli.ingest", "cli.chat")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatstream", description="chatstream tools")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))
