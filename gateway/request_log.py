"""The summary line of every HTTP request (``http.request``), logged by the middleware when the
handler returns, or by a stream when it ends (its handler has returned long before)."""

from __future__ import annotations

import time

from aiohttp import web

from gateway import appkeys
from shared.logging import get_logger

log = get_logger("gateway.http")


def log_request(request: web.Request, status: int | None) -> None:
    """``status`` is what the handler returned; None for one that was cancelled or whose stream
    ended (the status already sent, as nginx logs it, or 499 when no response went out)."""
    if status is None:
        status = request.get(appkeys.SENT_STATUS, 499)
    log.info(
        "http.request",
        method=request.method,
        path=request.path,
        status=status,
        user_id=request.get(appkeys.USER_ID),
        duration_ms=round((time.monotonic() - request[appkeys.STARTED_AT]) * 1000),
    )


class SelfLoggedResponse(web.StreamResponse):
    """A response that goes on after its handler has returned (aiohttp finishes it), and logs
    the request's summary line itself when it ends: the middleware leaves the line to it."""
