"""A gateway on a real port, on the real Redis and RabbitMQ, for clients that live outside the
test's process (the terminal client, the browser), and the cutting proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from shared.settings import ConnectionSettings
from tests.clients.cut_proxy import CutProxy
from tests.conftest import WorkerFactory, gateway_settings

LiveGateway = Callable[..., Awaitable[str]]


@pytest.fixture
def live_gateway(
    real_connections: ConnectionSettings, aiohttp_server: Any, start_worker: WorkerFactory
) -> LiveGateway:
    """Start a gateway and a worker; returns the gateway's base URL. The echo pipeline (the
    default unless ``default_pipeline`` says otherwise) writes a token every
    ``token_delay_ms``, so that a stream is still running when a test acts on it."""

    async def start(token_delay_ms: int = 60, **overrides: Any) -> str:
        overrides.setdefault("default_pipeline", "echo")
        settings = gateway_settings(real_connections, **overrides)
        server: TestServer = await aiohttp_server(create_app(settings))
        await start_worker(real_connections, echo_token_delay_ms=token_delay_ms)
        return f"http://127.0.0.1:{server.port}"

    return start


@pytest.fixture
async def cut_proxy() -> AsyncIterator[Callable[[str], Awaitable[CutProxy]]]:
    proxies: list[CutProxy] = []

    async def start(upstream_url: str) -> CutProxy:
        proxy = CutProxy(upstream_port=int(upstream_url.rsplit(":", 1)[1]))
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in reversed(proxies):
        await proxy.close()
