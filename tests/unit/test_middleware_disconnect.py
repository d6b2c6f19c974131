"""A client that resets its connection while the gateway still reads its request is a
disconnection (logged 499), not an internal error (500). Under load the reset can surface as a
ConnectionResetError from the body read before aiohttp cancels the handler, so the middleware
itself must tell the two apart."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from structlog.testing import capture_logs

from gateway.middlewares import request_context


async def test_a_reset_while_reading_the_body_is_logged_as_a_disconnection() -> None:
    async def reads_a_body_that_never_comes(request: web.Request) -> web.StreamResponse:
        raise ConnectionResetError("Connection lost")

    request = make_mocked_request("GET", "/healthz")
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await request_context(request, reads_a_body_that_never_comes)
    assert [line["status"] for line in logs if line["event"] == "http.request"] == [499]
    assert not [line for line in logs if line["event"] == "http.unhandled_error"]
