"""The gateway's HTTP server span (OpenTelemetry's HTTP semantic conventions): the root of a
chat's trace, made by the middleware only while tracing is on. A ``traceparent`` the request
brings (from a proxy that traces) makes it that trace's child instead.

A stream's span lasts as long as the stream: the relay adds its moments as span events
(:func:`record_stream`)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.semconv.attributes.user_agent_attributes import USER_AGENT_ORIGINAL
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from gateway.job_meta import JobRecord
from shared import tracing

REQUEST_ID = "chatstream.request_id"
USER_ID = "chatstream.user.id"
JOB_ID = "chatstream.job.id"
# The first server error status: 4xx answers are the client's, not the server's, failures.
SERVER_ERROR = 500


def start_request_span(request: web.Request, request_id: str) -> Span:
    """The request's server span, started now (the caller makes it current)."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else None
    attributes: dict[str, AttributeValue] = {
        HTTP_REQUEST_METHOD: request.method,
        URL_PATH: request.path,
        URL_SCHEME: request.scheme,
        REQUEST_ID: request_id,
    }
    if route is not None:
        attributes[HTTP_ROUTE] = route
    host, _, port = (request.host or "").rpartition(":")
    if host and port.isdigit():
        attributes[SERVER_ADDRESS], attributes[SERVER_PORT] = host, int(port)
    elif request.host:
        attributes[SERVER_ADDRESS] = request.host
    agent = request.headers.get("User-Agent")
    if agent:
        attributes[USER_AGENT_ORIGINAL] = agent
    return tracing.start_span(
        f"{request.method} {route}" if route else request.method,
        kind=SpanKind.SERVER,
        parent=tracing.extract(request.headers),
        attributes=attributes,
    )


def finish_request_span(span: Span, status: int, user_id: str | None) -> None:
    """Its status and user, before it ends."""
    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
    if user_id is not None:
        span.set_attribute(USER_ID, user_id)
    if status >= SERVER_ERROR:
        span.set_attribute(ERROR_TYPE, str(status))
        span.set_status(Status(StatusCode.ERROR))


def wall_ns(monotonic_s: float) -> int:
    """The wall-clock time, in span time, of a ``time.monotonic()`` reading."""
    return time.time_ns() - round((time.monotonic() - monotonic_s) * 1e9)


def record_stream(
    span: Span,
    *,
    job_id: str,
    close_reason: str,
    events: int,
    first_event_at: float | None,
    first_token_at: float | None,
) -> None:
    """A stream's relay as span events: its first event and first token relayed (stamped
    when they were), and its end. Recorded once, when the stream ends, so the relay's path per
    event stays as it is."""
    span.set_attribute(JOB_ID, job_id)
    if first_event_at is not None:
        span.add_event("first event relayed", timestamp=wall_ns(first_event_at))
    if first_token_at is not None:
        span.add_event("first token relayed", timestamp=wall_ns(first_token_at))
    span.add_event("stream end", {"close_reason": close_reason, "events": events})


def link_to_job(
    job: JobRecord, event: str, attributes: Mapping[str, AttributeValue] | None = None
) -> None:
    """A request about an earlier job (a resume, a cancel), traced: its span links to the trace
    of the request that made the job, and records ``event``."""
    span = tracing.current_span()
    if span is None:
        return
    span.set_attribute(JOB_ID, job.job_id)
    link = tracing.link_to(job.traceparent)
    if link is not None:
        span.add_link(link.context, {"chatstream.link": "job origin"})
    span.add_event(event, attributes)
