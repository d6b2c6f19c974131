"""The pub/sub listeners' liveness check on the embedded transport, as under ``make run``."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from shared.pubsub_listener import LIVENESS_S
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory
from tests.support.sse import job_events, parse_sse


async def test_the_embedded_liveness_check_logs_no_error(
    namespace: str, start_gateway: GatewayFactory
) -> None:
    """The check pings a link that has been quiet for a while and reads its pong; on the
    embedded transport it once failed on every period (the fake connection had no
    ``is_closing``), so the silent-link check never ran there."""
    with capture_logs() as logs:
        gateway = await start_gateway(ConnectionSettings(namespace=namespace))
        body = {"text": "one two three", "pipeline": "echo"}
        response = await gateway.post("/api/v1/chat/stream", json=body, headers=AUTH)
        assert job_events(parse_sse(await response.read()))[-1]["type"] == "end"
        # Quiet past a few periods: each check finds nothing heard, pings, and hears the pong.
        await asyncio.sleep(3 * LIVENESS_S)
        response = await gateway.post("/api/v1/chat/stream", json=body, headers=AUTH)
        assert job_events(parse_sse(await response.read()))[-1]["type"] == "end"
    troubles = [
        entry
        for entry in logs
        if entry["log_level"] in ("warning", "error", "critical")
        or entry["event"].endswith(("listener_failed", "listener_error", "link_silent"))
    ]
    assert troubles == []
    assert any(entry["event"] == "http.request" for entry in logs)
