"""Serving a Prometheus registry on a port of its own, for the worker and for a gateway whose
``METRICS_PORT`` keeps ``/metrics`` off the public port. prometheus-client renders the text;
this only binds it to an aiohttp site on the process's own event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

METRICS_PATH = "/metrics"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Time to first token spans queueing, so the buckets reach well past a second.
TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def new_registry() -> CollectorRegistry:
    """A registry per service instance (tests run several in one process), with the process's
    CPU, memory and file descriptors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def metrics_handler(
    registry: CollectorRegistry, refresh: Callable[[], Awaitable[None]] | None = None
) -> Handler:
    """The ``/metrics`` handler; ``refresh`` runs first, for values read at scrape time."""
    render = make_aiohttp_handler(registry)

    async def handler(request: web.Request) -> web.StreamResponse:
        if refresh is not None:
            await refresh()
        return await render(request)

    return handler


async def start_metrics_site(
    handler: Handler,
    host: str,
    port: int,
    *,
    extra_routes: Mapping[str, Handler] | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``handler`` at ``/metrics`` on ``host:port``, and each of ``extra_routes`` (path to
    GET handler) beside it; the runner and the bound port."""
    app = web.Application()
    app.router.add_get(METRICS_PATH, handler)
    for path, extra in (extra_routes or {}).items():
        app.router.add_get(path, extra)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # Port 0 binds a free port; the runner knows which.
    return runner, int(runner.addresses[0][1])
