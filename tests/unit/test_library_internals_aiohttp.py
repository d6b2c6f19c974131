"""What the aiohttp sections of shared/library_internals.py rely on, pinned on the installed
aiohttp: each test fails when an upgrade changes one of those internals, before a route that
needs it breaks quietly."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient

from shared.library_internals import (
    forget_sent_headers,
    handle_in_app,
    sub_request,
    write_chunk_now,
    writes_straight_through,
)


class RecordingWriter(AbstractStreamWriter):
    """A sub-request's writer: records what a prepared response would have sent."""

    def __init__(self) -> None:
        self.status_lines: list[str] = []
        self.written: list[bytes] = []

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        self.written.append(chunk)

    async def drain(self) -> None:
        return None

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        return None

    def enable_chunking(self) -> None:
        return None

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        self.status_lines.append(status_line)


def app_with_inner_routes(outer: Any) -> web.Application:
    @web.middleware
    async def marks(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        response.headers["X-Middleware"] = request.match_info.route.name or ""
        return response

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.json_response({"name": request.match_info["name"], "body": await request.json()})

    async def streams(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"streamed")
        return response

    app = web.Application(middlewares=[marks])
    app.router.add_post("/echo/{name}", echo, name="echo")
    app.router.add_get("/streams", streams, name="streams")
    app.router.add_post("/outer", outer)
    return app


async def test_a_sub_request_runs_through_the_router_and_middlewares_with_its_own_body(
    aiohttp_client: AiohttpClient,
) -> None:
    async def outer(request: web.Request) -> web.StreamResponse:
        template = request.clone()
        # The batch's own body is read (its payload stream consumed) before the items run.
        assert await request.read() == b"the outer body"
        sub = sub_request(
            template,
            method="POST",
            rel_url="/echo/alice?x=1",
            headers={"Content-Type": "application/json"},
            body=b'{"n": 1}',
            writer=RecordingWriter(),
        )
        inner = await handle_in_app(request.app, sub)
        assert isinstance(inner, web.Response) and isinstance(inner.body, bytes)
        assert not inner.prepared, "_handle returns the response unprepared"
        return web.Response(
            body=inner.body,
            content_type="application/json",
            headers={"X-Inner": inner.headers["X-Middleware"]},
        )

    client = await aiohttp_client(app_with_inner_routes(outer))
    response = await client.post("/outer", data=b"the outer body")
    assert response.status == 200
    assert response.headers["X-Inner"] == "echo"
    assert await response.json() == {"name": "alice", "body": {"n": 1}}


async def test_a_sub_request_that_prepares_its_response_writes_to_its_own_writer(
    aiohttp_client: AiohttpClient,
) -> None:
    writer = RecordingWriter()

    async def outer(request: web.Request) -> web.StreamResponse:
        sub = sub_request(
            request.clone(), method="GET", rel_url="/streams", headers={}, body=b"", writer=writer
        )
        await handle_in_app(request.app, sub)
        return web.Response(text="outer")

    client = await aiohttp_client(app_with_inner_routes(outer))
    response = await client.post("/outer")
    # The inner response never reached the socket the outer one went out on.
    assert await response.text() == "outer"
    assert writer.status_lines == ["HTTP/1.1 200 OK"]
    assert b"".join(writer.written) == b"streamed"


async def test_a_response_whose_headers_are_forgotten_once_sent_still_goes_out_whole(
    aiohttp_client: AiohttpClient,
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Id": "7"})
        await response.prepare(request)
        forget_sent_headers(response)
        assert len(response.headers) == 0
        await response.write(b"data: 1\n\n")
        await response.write_eof(b"data: 2\n\n")
        return response

    app = web.Application()
    app.router.add_get("/stream", stream)
    client = await aiohttp_client(app)
    response = await client.get("/stream")
    # aiohttp read the headers once, at prepare(): all of them are on the wire, and the body
    # is chunked and ended as it would be.
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["X-Id"] == "7"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert await response.read() == b"data: 1\n\ndata: 2\n\n"


async def test_a_chunk_written_past_the_writer_arrives_in_order_and_framed(
    aiohttp_client: AiohttpClient,
) -> None:
    """The writer puts each write on the transport at once and frames it as an HTTP/1.1 chunk,
    so a chunk written to the transport between two of its writes arrives between them."""
    straight_through: list[bool] = []

    async def streams(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        straight_through.append(writes_straight_through(response))
        await response.write(b"first ")
        assert request.transport is not None
        write_chunk_now(request.transport, b"second ")
        await response.write(b"third")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", streams)
    client = await aiohttp_client(app)
    response = await client.get("/")
    assert await response.read() == b"first second third"
    assert straight_through == [True]


async def test_a_compressed_body_is_not_written_past_its_writer(
    aiohttp_client: AiohttpClient,
) -> None:
    seen: list[bool] = []

    async def streams(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        response.enable_compression()
        await response.prepare(request)
        seen.append(writes_straight_through(response))
        await response.write_eof(b"x")
        return response

    app = web.Application()
    app.router.add_get("/", streams)
    client = await aiohttp_client(app)
    await (await client.get("/", headers={"Accept-Encoding": "gzip"})).read()
    assert seen == [False]
