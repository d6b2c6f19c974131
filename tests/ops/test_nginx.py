"""deploy/nginx/chatstream.conf in front of two real gateway processes and a worker: it passes
`nginx -t`, streams tokens one by one (not one buffered lump), and a client whose gateway dies
mid-stream resumes through nginx on the other one."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.app import create_app
from shared import replay_log
from shared.names import Names
from shared.settings import GatewaySettings
from tests.conftest import AUTH, REDIS_URL
from tests.ops.conftest import require_nginx
from tests.ops.stack import Stack, render_nginx
from tests.ops.support import sample_value
from tests.support.sse import parse_block

pytestmark = [pytest.mark.real, pytest.mark.process]

WORDS = " ".join(f"word{n}" for n in range(24))
READ_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_read=20)


def test_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    require_nginx()
    main = render_nginx(tmp_path, [18081, 18082], 18080)
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@dataclass
class Received:
    """What a client read off one SSE response, read by read."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    # How many token events each network read carried (reads with none left out).
    tokens_per_read: list[int] = field(default_factory=list)
    # For each token: whether, when it arrived, the worker had not yet produced the next event.
    ahead_of_producer: list[bool] = field(default_factory=list)
    buffer: str = ""

    @property
    def tokens(self) -> list[str]:
        return [e["content"] for e in self.events if e["type"] == "token"]

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1]["type"] in {"end", "error"}


async def read_stream(
    response: aiohttp.ClientResponse,
    received: Received,
    *,
    redis: Redis,
    names: Names,
    stop_after_tokens: int | None = None,
) -> None:
    """Read SSE until the stream ends (or ``stop_after_tokens`` tokens have come). For every
    token, ask the replay log whether anything newer was produced yet."""
    async for chunk in response.content.iter_any():
        received.buffer += chunk.decode()
        in_this_read = 0
        while "\n\n" in received.buffer:
            block, received.buffer = received.buffer.split("\n\n", 1)
            message = parse_block(block)
            if not message.data or message.type == "heartbeat":
                continue
            event = message.json
            received.events.append(event)
            if message.id is not None:
                received.ids.append(int(message.id))
            if event["type"] == "token":
                in_this_read += 1
                assert message.id is not None
                last = await replay_log.last_event(redis, names, event_job_id(response))
                assert last is not None
                received.ahead_of_producer.append(last.seq == int(message.id))
        if in_this_read:
            received.tokens_per_read.append(in_this_read)
        if received.ended:
            return
        if stop_after_tokens is not None and len(received.tokens) >= stop_after_tokens:
            return


def event_job_id(response: aiohttp.ClientResponse) -> str:
    return response.headers["X-Job-Id"]


async def test_tokens_arrive_one_by_one_through_nginx(stack: Stack) -> None:
    nginx = stack.services["nginx"]
    names = Names(stack.namespace)
    redis = Redis.from_url(REDIS_URL)
    received = Received()
    try:
        async with (
            aiohttp.ClientSession(timeout=READ_TIMEOUT) as http,
            http.post(
                f"{nginx.url}/api/v1/chat/stream",
                json={"text": WORDS, "pipeline": "echo"},
                headers=AUTH,
            ) as response,
        ):
            assert response.status == 200, await response.text()
            assert response.headers["Content-Type"] == "text/event-stream"
            await read_stream(response, received, redis=redis, names=names)
            # Prometheus scrapes each process directly; the public proxy never shows /metrics.
            async with http.get(f"{nginx.url}/metrics") as hidden:
                assert hidden.status == 404
    finally:
        await redis.aclose()

    assert received.ended, stack.log_text()
    tokens = received.tokens
    assert "".join(tokens) == WORDS == received.events[-1]["content"]
    assert received.ids == list(range(1, len(received.ids) + 1))
    # Unbuffered: most tokens come in a read of their own, and most reach the client before
    # the worker has produced the next event. A buffering proxy delivers them in one lump,
    # after the last one was produced, and fails both.
    assert sum(n == 1 for n in received.tokens_per_read) >= len(tokens) // 2, received
    assert sum(received.ahead_of_producer[:-1]) >= (len(tokens) - 1) // 2, received


async def open_streams(http: aiohttp.ClientSession, stack: Stack, name: str) -> float | None:
    service = stack.services[name]
    async with http.get(f"http://127.0.0.1:{service.metrics_port}/metrics") as response:
        return sample_value(await response.text(), "chatstream_gateway_open_streams")


def has_resume_route() -> bool:
    """Whether the gateway routes ``GET /api/v1/streams/{jobId}`` (resume) yet."""
    app = create_app(GatewaySettings())
    return any(
        re.fullmatch(r"/api/v1/streams/\{\w+\}", resource.canonical)
        for resource in app.router.resources()
    )


# A gateway that gets SIGTERM closes its streams over DRAIN_S (1 s in these tests).
DRAINS = "drain_s" in GatewaySettings.__dataclass_fields__


@pytest.mark.skipif(not has_resume_route(), reason="needs the resume route")
@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(signal.SIGKILL, id="gateway-dies"),
        pytest.param(
            signal.SIGTERM,
            id="gateway-drains",
            marks=pytest.mark.skipif(not DRAINS, reason="needs the gateway's drain"),
        ),
    ],
)
async def test_client_resumes_through_nginx_on_the_other_gateway(
    stack: Stack, stop: signal.Signals
) -> None:
    nginx = stack.services["nginx"]
    names = Names(stack.namespace)
    redis = Redis.from_url(REDIS_URL)
    first, resumed = Received(), Received()
    try:
        async with aiohttp.ClientSession(timeout=READ_TIMEOUT) as http:
            async with http.post(
                f"{nginx.url}/api/v1/chat/stream",
                json={"text": WORDS, "pipeline": "echo"},
                headers=AUTH,
            ) as response:
                assert response.status == 200
                job_id = response.headers["X-Job-Id"]
                await read_stream(response, first, redis=redis, names=names, stop_after_tokens=4)
                serving = [
                    name
                    for name in ("gateway-1", "gateway-2")
                    if await open_streams(http, stack, name) == 1
                ]
                assert len(serving) == 1, serving
                stack.kill(serving[0], stop)
                # Whatever was in flight still arrives, then the connection breaks.
                with contextlib.suppress(aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                    await read_stream(response, first, redis=redis, names=names)
            assert not first.ended
            last_id = first.ids[-1]

            async with http.get(
                f"{nginx.url}/api/v1/streams/{job_id}",
                headers={**AUTH, "Last-Event-ID": str(last_id)},
            ) as response:
                assert response.status == 200, await response.text()
                await read_stream(response, resumed, redis=redis, names=names)
    finally:
        await redis.aclose()

    assert resumed.ended, stack.log_text()
    assert resumed.ids[0] == last_id + 1
    assert first.ids + resumed.ids == list(range(1, resumed.ids[-1] + 1))
    assert "".join(first.tokens + resumed.tokens) == WORDS == resumed.events[-1]["content"]
