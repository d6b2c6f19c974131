"""``python -m bench.bare_sse PORT HEARTBEAT_S``: the limit for idle streams, a bare aiohttp SSE
handler on uvloop, as small as such a handler gets: it reads the request, answers with the SSE
headers and a job id (which the load client expects), writes ``retry:``, then a heartbeat every
``HEARTBEAT_S`` until the client leaves. No authentication, Redis, job or relay: what is left is
the memory that aiohttp and the event loop spend per connection, measured the same way as the
gateway's (``idle_streams``)."""

from __future__ import annotations

import asyncio
import sys
import uuid

import uvloop
from aiohttp import web

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
HEARTBEAT = b'data: {"type":"heartbeat"}\n\n'


def make_app(heartbeat_s: float) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={**HEADERS, "X-Job-Id": uuid.uuid4().hex})
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        while True:
            await asyncio.sleep(heartbeat_s)
            await response.write(HEARTBEAT)

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/v1/chat/stream", stream)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    port, heartbeat_s = int(sys.argv[1]), float(sys.argv[2])
    web.run_app(
        make_app(heartbeat_s),
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
