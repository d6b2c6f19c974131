"""``python -m bench.otlp_sink PORT``: where the benchmark's traced services export
(``python -m bench --tracing``). It takes OTLP/HTTP trace exports and answers each as a trace
store would, without decoding or keeping them: the services pay the whole cost of tracing
(spans, batching, encoding, the request), the sink as little as it can. On exit it prints how
many exports and bytes it took."""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web

# An empty ExportTraceServiceResponse: every span accepted.
ACCEPTED = b""


def make_app() -> web.Application:
    received = {"exports": 0, "bytes": 0}

    async def export(request: web.Request) -> web.Response:
        body = await request.read()
        received["exports"] += 1
        received["bytes"] += len(body)
        return web.Response(body=ACCEPTED, content_type="application/x-protobuf")

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def report(_: web.Application) -> None:
        print(f"otlp_sink: {received['exports']} exports, {received['bytes']} bytes", flush=True)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", export)
    app.router.add_get("/readyz", ready)
    app.on_cleanup.append(report)
    return app


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
