"""The load client's kept-alive connection (bench/sse_raw.py) against a small aiohttp server that
answers like the gateway: chats one after another on one connection, a refusal, a server that
closes the connection, and a response that never ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import sse_raw

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> TestServer:
    app = web.Application()
    app.router.add_post(sse_raw.STREAM_PATH, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def sse(request: web.Request, *, close: bool = False) -> web.StreamResponse:
    text = (await request.json())["text"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    if close:
        response.force_close()
    await response.prepare(request)
    await response.write(b'id: 1\ndata: {"type":"token","content":"x"}\n\n')
    await response.write(f'id: 2\ndata: {{"type":"end","content":"{text}"}}\n\n'.encode())
    await response.write_eof()
    return response


async def chat(connection: sse_raw.KeptConnection, url: str, text: str) -> list[bytes]:
    frames: list[bytes] = []
    request = sse_raw.chat_request(url, "key", text)
    await connection.chat(request, lambda read, _at: frames.extend(read))
    return frames


async def test_chats_follow_each_other_on_one_connection() -> None:
    peers: set[object] = set()

    async def handler(request: web.Request) -> web.StreamResponse:
        peers.add(request.transport and request.transport.get_extra_info("peername"))
        return await sse(request)

    server = await serve(handler)
    url = str(server.make_url(""))
    connection = await sse_raw.KeptConnection.open(url)
    try:
        for text in ("one", "two", "three"):
            frames = await chat(connection, url, text)
            assert frames[-1].endswith(f'"content":"{text}"}}'.encode())
            assert connection.reusable
    finally:
        connection.close()
        await server.close()
    assert len(peers) == 1


async def test_a_refusal_raises_its_status_and_body() -> None:
    async def refuse(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"code": "rate_limited"}}, status=429)

    server = await serve(refuse)
    url = str(server.make_url(""))
    connection = await sse_raw.KeptConnection.open(url)
    try:
        with pytest.raises(RuntimeError, match=r"^429: .*rate_limited"):
            await chat(connection, url, "one")
    finally:
        connection.close()
        await server.close()


async def test_a_connection_the_server_closes_is_not_reused() -> None:
    async def closing(request: web.Request) -> web.StreamResponse:
        return await sse(request, close=True)

    server = await serve(closing)
    url = str(server.make_url(""))
    connection = await sse_raw.KeptConnection.open(url)
    try:
        frames = await chat(connection, url, "one")
        assert frames[-1].endswith(b'"content":"one"}')
        assert not connection.reusable
        with pytest.raises(ConnectionError):
            await chat(connection, url, "two")
    finally:
        connection.close()
        await server.close()


async def test_a_response_that_never_ends_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_raw, "CHAT_TIMEOUT_S", 0.2)

    async def stuck(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(5)
        return response

    server = await serve(stuck)
    url = str(server.make_url(""))
    connection = await sse_raw.KeptConnection.open(url)
    try:
        with pytest.raises(TimeoutError):
            await chat(connection, url, "one")
        assert not connection.reusable
    finally:
        connection.close()
        await server.close()
