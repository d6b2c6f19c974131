"""The gateway's middleware: request context and summary line, the error format, then
authentication (after routing, so 404 and 405 win over 401)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import appkeys
from gateway.auth import authenticate, bearer_token
from gateway.errors import ApiError, error_response, from_http_exception, unavailable
from gateway.request_log import log_request
from gateway.request_trace import finish_request_span, start_request_span
from gateway.streaming_routes import opens_turn
from gateway.tickets import redeem_ticket
from shared import tracing
from shared.jobqueue import QueueUnavailableError
from shared.logging import get_logger
from shared.redis_client import is_redis_failure

log = get_logger("gateway.http")

AUTHENTICATED_PREFIXES = ("/api/", "/v1/")
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})
# The one route that also accepts a stream ticket instead of a bearer token.
TICKET_ROUTE = "attach_stream"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(request: web.Request) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one."""
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request context and summary line, the error format, then authentication, in one
    middleware: one coroutine frame (and aiohttp's wrapper around it) per request instead of
    three, and a stream's handler runs as long as the stream."""
    structlog.contextvars.clear_contextvars()
    request_id = request_id_of(request)
    request[appkeys.REQUEST_ID] = request_id
    request[appkeys.STARTED_AT] = time.monotonic()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    # The root of the request's trace, current for everything below; None while tracing is off.
    span = start_request_span(request, request_id) if tracing.enabled() else None
    token = tracing.attach(span) if span is not None else None
    status: int | None = None
    response: web.StreamResponse | None = None
    try:
        try:
            with tracing.span("auth"):
                await _authenticate(request)
            response = await handler(request)
        except ConnectionResetError as e:
            # The client went away before its request was read (a reset in the middle of its
            # body): there is nobody to answer, and it is not our error. aiohttp treats a
            # cancelled handler as a premature disconnection; the summary line says 499
            # (unless a response had gone out already: see gateway/request_log.py).
            raise asyncio.CancelledError from e
        except Exception as e:
            if appkeys.SENT_STATUS in request:
                # A stream failed after its headers went out: no error response can follow
                # them. aiohttp logs the error and closes the connection.
                raise
            response = _error_format(e)
        status = response.status
        return response
    finally:
        logged_status = log_request(request, status)
        if span is not None and token is not None:
            finish_request_span(span, logged_status, request.get(appkeys.USER_ID))
            tracing.detach(token)
            span.end()


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed or not, carries its request id and
    ``nosniff``, and a JSON one ``Cache-Control: no-store`` (it holds a user's data; a stream
    and a static file keep their own ``no-cache``); the request remembers the status it was
    sent."""
    request[appkeys.SENT_STATUS] = response.status
    headers = response.headers
    request_id = request.get(appkeys.REQUEST_ID)
    if request_id:
        headers["X-Request-ID"] = request_id
    headers["X-Content-Type-Options"] = "nosniff"
    if response.content_type == "application/json":
        headers.setdefault("Cache-Control", "no-store")


def _error_format(error: Exception) -> web.StreamResponse:
    """The API's answer to a failed request (called while ``error`` is being handled, so a
    logged traceback is its own). Redirects are raised on: they are not failures."""
    if isinstance(error, ApiError):
        if error.status == 503 and error.__cause__ is not None:
            # Which server, and whether it was down or only slow to confirm.
            log.warning("http.backend_unavailable", error=repr(error.__cause__))
        return error.response()
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        return from_http_exception(error)
    if isinstance(error, QueueUnavailableError) or is_redis_failure(error):
        log.warning("http.backend_unavailable", error=str(error))
        return unavailable("a backing service cannot be reached").response()
    log.exception("http.unhandled_error")
    return error_response(500, "internal", "an internal error occurred")


async def _authenticate(request: web.Request) -> None:
    """After routing, so 404 and 405 win over 401."""
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        raise routing_error
    if (
        request.path.startswith(AUTHENTICATED_PREFIXES)
        and request.path not in PUBLIC_PATHS
        and request.method != "OPTIONS"
    ):
        user_id = _caller(request)
        request[appkeys.USER_ID] = user_id
        structlog.contextvars.bind_contextvars(user_id=user_id)
        if not opens_turn(request.match_info.handler):
            # A turn takes its own, with its writes, in one round trip (gateway/turns.py).
            await request.app[appkeys.RATE_LIMITER].hit(user_id)


def _caller(request: web.Request) -> str:
    """The user behind the bearer token, or behind a stream ticket where one is accepted."""
    # The route first: the parsed query is cached on the request, and a stream would hold it.
    if request.match_info.route.name == TICKET_ROUTE and "Authorization" not in request.headers:
        ticket = request.query.get("ticket")
        if ticket is not None:
            return redeem_ticket(
                request.app[appkeys.TICKET_SECRET], ticket, request.match_info["job_id"]
            )
    return authenticate(bearer_token(request), request.app[appkeys.SETTINGS])
