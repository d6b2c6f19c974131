"""The log lines the dashboards read: JSON in one layout, nothing below the configured level."""

from __future__ import annotations

import json
import subprocess
import sys

# Run in a fresh interpreter: logging's configuration is process-wide.
_PROGRAM = """
import logging
from shared.logging import configure_logging, get_logger
from shared.settings import LoggingSettings

configure_logging("svc", LoggingSettings(level="info", format="json"))
library = logging.getLogger("a_library")
library.setLevel(logging.DEBUG)
library.debug("a library's debug line")
library.warning("a library's warning")
get_logger("chatstream.part").debug("chatstream's debug line")
get_logger("chatstream.part").info("chatstream's info line", n=1)
"""


def _lines() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_a_library_logger_set_to_debug_logs_nothing_below_the_level() -> None:
    events = [json.loads(line)["event"] for line in _lines()]
    assert events == ["a library's warning", "chatstream's info line"]


def test_library_lines_and_chatstreams_share_one_compact_layout() -> None:
    for line in _lines():
        assert '": ' not in line and '", "' not in line, line
        fields = json.loads(line)
        assert fields["service"] == "svc"
        assert {"level", "timestamp", "logger"} <= fields.keys()
