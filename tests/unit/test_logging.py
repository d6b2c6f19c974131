"""The log lines the dashboards read: JSON in one layout, nothing below the configured level,
the process's own fields on every line."""

from __future__ import annotations

import json
import subprocess
import sys

# Run in a fresh interpreter: logging's configuration is process-wide.
_PROGRAM = """
import asyncio
import logging
import structlog
from shared.logging import bind_process_fields, configure_logging, get_logger
from shared.settings import LoggingSettings
from shared.tasks import start_shared_task

configure_logging("svc", LoggingSettings(level="info", format="json"))
bind_process_fields(worker_id="w-1")
library = logging.getLogger("a_library")
library.setLevel(logging.DEBUG)
library.debug("a library's debug line")
library.warning("a library's warning")
get_logger("chatstream.part").debug("chatstream's debug line")
get_logger("chatstream.part").info("chatstream's info line", n=1)


async def listener() -> None:
    get_logger("chatstream.listener").info("a listener's line")


async def a_request() -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1")
    await start_shared_task(listener(), "listener")


asyncio.run(a_request())
"""


def _lines() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_a_library_logger_set_to_debug_logs_nothing_below_the_level() -> None:
    events = [json.loads(line)["event"] for line in _lines()]
    assert events == ["a library's warning", "chatstream's info line", "a listener's line"]


def test_library_lines_and_chatstreams_share_one_compact_layout() -> None:
    for line in _lines():
        assert '": ' not in line and '", "' not in line, line
        fields = json.loads(line)
        assert fields["service"] == "svc"
        assert {"level", "timestamp", "logger"} <= fields.keys()


def test_a_line_from_a_task_of_its_own_has_the_process_fields_and_no_request_ids() -> None:
    [line] = [json.loads(line) for line in _lines() if "a listener's line" in line]
    assert line["service"] == "svc" and line["worker_id"] == "w-1"
    assert "request_id" not in line
