"""A process whose settings cannot work stops at start-up with one line that names the
variable, not a traceback, and never falls back to something else quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import PROJECT_ROOT


def start(module: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``module`` started with ``settings`` and none of the machine's own server settings."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LLM_", "REDIS_", "AMQP_"))
    }
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=PROJECT_ROOT,
        env=environ | settings,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("module", ["worker", "launcher"])
def test_the_openai_generator_without_a_model_server_url_stops_the_start(module: str) -> None:
    finished = start(module, GENERATOR="openai", LLM_MODEL="llama3.2:1b")
    assert finished.returncode == 1
    assert finished.stderr.startswith(
        "chatstream: configuration error: LLM_BASE_URL must be set when GENERATOR=openai"
    )
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize("module", ["gateway", "worker"])
def test_a_redis_ca_file_that_is_not_there_stops_the_start(module: str) -> None:
    finished = start(
        module,
        REDIS_URL="rediss://127.0.0.1:6380/0",
        AMQP_URL="amqp://127.0.0.1:5672/",
        REDIS_TLS_CA_FILE="/nonexistent/redis-ca.pem",
    )
    assert finished.returncode == 1
    assert finished.stderr == (
        "chatstream: configuration error: REDIS_TLS_CA_FILE: cannot read "
        "'/nonexistent/redis-ca.pem': No such file or directory\n"
    )
