"""The JSON log lines of a real run (two gateways, a worker and nginx, one answer streamed)
carry every field the dashboard's log panels query."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import AUTH
from tests.ops.dashboard import EVERY_LINE, dashboard_log_fields
from tests.ops.stack import Stack

pytestmark = [pytest.mark.real, pytest.mark.process]


def json_lines(stack: Stack) -> list[dict[str, Any]]:
    """Every line the chatstream processes wrote; each must be one JSON object."""
    lines: list[dict[str, Any]] = []
    for service in stack.services.values():
        if service.name == "nginx":
            continue
        for raw in service.log_path.read_text().splitlines():
            if raw.strip():
                value = json.loads(raw)
                assert isinstance(value, dict), raw
                lines.append(value)
    return lines


async def test_a_real_run_logs_every_field_the_dashboard_queries(stack: Stack) -> None:
    nginx = stack.services["nginx"]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{nginx.url}/api/v1/chat/stream",
            json={"text": "logs for dashboards", "pipeline": "echo"},
            headers=AUTH,
        ) as response:
            assert response.status == 200
            body = await response.read()
        async with http.post(f"{nginx.url}/api/v1/chat/stream", json={"text": "x"}) as refused:
            assert refused.status == 401
    assert b'"type":"end"' in body.replace(b" ", b"")
    # SIGTERM lets every process write its last lines before the files are read.
    stack.stop_all()
    lines = json_lines(stack)

    wanted = dashboard_log_fields()
    assert {"stream.closed", "job.finished", "http.request"} <= set(wanted)
    for line in lines:
        missing = wanted.get(EVERY_LINE, set()) - set(line)
        assert not missing, (missing, line)
    for event, fields in wanted.items():
        if event == EVERY_LINE:
            continue
        found = [line for line in lines if line["event"] == event]
        assert found, f"no {event} line in the run:\n{stack.log_text()}"
        for line in found:
            assert fields <= set(line), (event, sorted(fields - set(line)), line)

    closed = next(line for line in lines if line["event"] == "stream.closed")
    assert closed["close_reason"] == "end" and closed["ttft_ms"] is not None
    finished = next(line for line in lines if line["event"] == "job.finished")
    assert finished["worker_id"] == "worker-1" and finished["outcome"] == "stop"
    assert finished["request_id"] == closed["request_id"]
    statuses = {line["status"] for line in lines if line["event"] == "http.request"}
    assert {200, 401} <= statuses
