"""``/healthz`` (the process serves) and ``/readyz`` (Redis and the job queue answer)."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys
from gateway.errors import RETRY_AFTER_S, error_response
from shared.readiness import answers
from shared.version import chatstream_version

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": chatstream_version()})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    timeout_s = settings.connections.connect_timeout_s
    checks = {
        "redis": await answers(_ping_redis(request), timeout_s),
        "queue": await answers(request.app[appkeys.JOB_PUBLISHER].ping(), timeout_s),
    }
    if all(checks.values()):
        return web.json_response({"status": "ready", "checks": checks})
    down = sorted(name for name, ok in checks.items() if not ok)
    return error_response(
        503,
        "unavailable",
        f"not ready: {', '.join(down)} down",
        details={"checks": checks},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _ping_redis(request: web.Request) -> bool:
    return bool(await request.app[appkeys.REDIS].ping())
