"""The ``stack`` fixture: real gateway, worker and nginx processes on one test namespace."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ops.stack import Stack


def require_nginx() -> None:
    """CI installs nginx (.ci/run); elsewhere a missing nginx skips rather than fails."""
    if shutil.which("nginx") is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; .ci/run installs it")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")


@pytest.fixture
async def stack(namespace: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Two gateways and a worker (echo tokens 100 ms apart) behind nginx, all ready. A gateway
    stopped with SIGTERM closes its streams within a second (DRAIN_S)."""
    require_nginx()
    stack = Stack(tmp_path, namespace, env_overrides={"ECHO_TOKEN_DELAY_MS": "100", "DRAIN_S": "1"})
    try:
        gateways = [stack.start_gateway("gateway-1"), stack.start_gateway("gateway-2")]
        stack.start_worker("worker-1")
        stack.start_nginx(gateways)
        await stack.wait_ready()
        yield stack
    finally:
        stack.stop_all()
