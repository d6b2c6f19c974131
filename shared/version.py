"""chatstream's version: pyproject.toml's ``version`` is the single source, read back from the
installed package's metadata (``uv sync`` and the image both install the project)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "chatstream"


def chatstream_version() -> str:
    """The installed version, or ``0+unknown`` when the sources run without being installed
    (a reported version must never stop a process from starting)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
