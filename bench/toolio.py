"""The load generators' side of the runner's protocol: the spec arrives as JSON in argv, each
report leaves as one JSON line on stdout, and a ``stop`` line on stdin ends a timed phase."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
from pathlib import Path
from typing import Any


def spec() -> dict[str, Any]:
    value = json.loads(sys.argv[1])
    assert isinstance(value, dict)
    return value


def emit(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (10,000 streams need 10,000 sockets)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def wait_for_stop(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    """Wait for ``stop`` (or the runner going away); False when ``timeout_s`` passed first."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                line = await reader.readline()
                if not line or line.strip() == b"stop":
                    return True
    except TimeoutError:
        return False


def read_job_ids(path: str) -> list[str]:
    # A few kilobytes read once before any load starts: blocking the loop here costs nothing.
    return Path(path).read_text().split()


def write_job_ids(path: str, job_ids: list[str]) -> None:
    Path(path).write_text("\n".join(job_ids))


def cancel_on_signals() -> None:
    """SIGTERM and SIGINT cancel the current task, a measurement (the first of them; a second
    does not cut its clean-up short), so that its ``finally`` blocks stop what it started and
    purge its namespaces: a killed run used to leave its processes, queue and keys behind."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: None)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, cancel)
