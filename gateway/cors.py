"""CORS for the origins in ``CORS_ORIGINS`` only; with none configured, nothing is added.

aiohttp-cors does the protocol: it adds an OPTIONS route to every resource, answers preflights
there (authentication lets OPTIONS through, so a preflight needs no token) and
adds the response headers through ``on_response_prepare``, which covers streamed responses and
the JSON errors of the error middleware alike. A disallowed origin gets no CORS headers (its
preflight is refused with 403).
"""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web

# What a browser front end sends: its token, JSON, and the resume and tracing headers.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID")
# What it may read: the stream's job and session, the request id, and when to retry a 429/503.
EXPOSED_HEADERS = ("X-Job-Id", "X-Session-Id", "X-Request-ID", "Retry-After")
ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE")
PREFLIGHT_MAX_AGE_S = 600


def enable_cors(app: web.Application, origins: tuple[str, ...]) -> None:
    """Call once every route is registered: each one gets CORS for ``origins``."""
    if not origins:
        return
    # aiohttp-cors ships py.typed but leaves its constructors unannotated.
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        # Bearer tokens, not cookies: the browser never needs to send credentials itself.
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        allow_headers=ALLOWED_HEADERS,
        allow_methods=ALLOWED_METHODS,
        max_age=PREFLIGHT_MAX_AGE_S,
    )
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in list(app.router.routes()):
        cors.add(route)
    app.on_response_prepare.append(_vary_on_origin)


async def _vary_on_origin(_: web.Request, response: web.StreamResponse) -> None:
    # The allowed origin is echoed back, so a shared cache must key on it.
    if "Access-Control-Allow-Origin" in response.headers:
        response.headers.add("Vary", "Origin")
