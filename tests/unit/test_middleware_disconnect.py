"""A client that resets its connection while the gateway still reads its request is a
disconnection (logged 499), not an internal error (500). Under load the reset can surface as a
ConnectionResetError from the body read before aiohttp cancels the handler, so the middleware
itself must tell the two apart."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pytest_aiohttp import AiohttpClient
from structlog.testing import capture_logs

from gateway.middlewares import echo_request_id, request_context


async def test_a_reset_while_reading_the_body_is_logged_as_a_disconnection() -> None:
    async def reads_a_body_that_never_comes(request: web.Request) -> web.StreamResponse:
        raise ConnectionResetError("Connection lost")

    request = make_mocked_request("GET", "/healthz")
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await request_context(request, reads_a_body_that_never_comes)
    assert [line["status"] for line in logs if line["event"] == "http.request"] == [499]
    assert not [line for line in logs if line["event"] == "http.unhandled_error"]


async def test_a_stream_the_client_closes_is_logged_with_the_status_it_was_sent(
    aiohttp_client: AiohttpClient,
) -> None:
    """A client that closes a stream once it has what it wants cancels the handler; the summary
    line says 200, the status on the wire, not 499 (as nginx logs it)."""
    opened = asyncio.Event()

    async def streams_until_cancelled(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data: {}\n\n")
        opened.set()
        await asyncio.Event().wait()
        return response

    app = web.Application(middlewares=[request_context])
    app.on_response_prepare.append(echo_request_id)
    app.router.add_get("/healthz", streams_until_cancelled)
    client = await aiohttp_client(app)
    with capture_logs() as logs:
        response = await client.get("/healthz")
        await opened.wait()
        response.close()
        for _ in range(200):
            if any(line["event"] == "http.request" for line in logs):
                break
            await asyncio.sleep(0.01)
    assert [line["status"] for line in logs if line["event"] == "http.request"] == [200]
