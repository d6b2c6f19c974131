"""The summary line of every HTTP request (``http.request``), logged by the middleware when the
handler returns (a stream's, when the stream ends)."""

from __future__ import annotations

import time

from aiohttp import web

from gateway import appkeys
from shared.logging import get_logger

log = get_logger("gateway.http")


def log_request(request: web.Request, status: int | None) -> int:
    """``status`` is what the handler returned; None for one that was cancelled (the status
    already sent, as nginx logs it, or 499 when no response went out). Returns the status
    logged."""
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
    return status
