"""A process whose settings cannot work stops at start-up with one line that names the
variable, not a traceback, and never falls back to something else quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import PROJECT_ROOT


@pytest.mark.parametrize("module", ["worker", "launcher"])
def test_the_openai_generator_without_a_model_server_url_stops_the_start(module: str) -> None:
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LLM_", "REDIS_", "AMQP_"))
    }
    environ |= {"GENERATOR": "openai", "LLM_MODEL": "llama3.2:1b"}
    finished = subprocess.run(
        [sys.executable, "-m", module],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 1
    assert finished.stderr.startswith(
        "chatstream: configuration error: LLM_BASE_URL must be set when GENERATOR=openai"
    )
    assert "Traceback" not in finished.stderr
