"""The gateway's Prometheus series (see docs/logging.md, "Metrics"), and ``/metrics``.

``/metrics`` is served on the API port unless ``METRICS_PORT`` moves it to a port of its own,
which production uses so that the public proxy never exposes it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway import appkeys
from shared.metrics_http import (
    METRICS_PATH,
    TTFT_BUCKETS_S,
    metrics_handler,
    new_registry,
    start_metrics_site,
)
from shared.settings import GatewaySettings

# A stream that never reached the relay loop was refused before its first byte.
NOT_STREAMED = "error_before_stream"
SLOW_CLIENT = "slow_client"


class GatewayMetrics:
    """The series one gateway process exposes; a registry of its own per application."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        self.render = metrics_handler(self.registry)
        self.open_streams = Gauge(
            "chatstream_gateway_open_streams",
            "SSE streams this gateway is relaying right now",
            registry=self.registry,
        )
        self._relaying: AbstractContextManager[None] = self.open_streams.track_inprogress()
        self.streams = Counter(
            "chatstream_gateway_streams",
            "SSE streams closed, by close reason (end, error, slow_client, client_gone, ...)",
            ["close_reason"],
            registry=self.registry,
        )
        self.resumes = Counter(
            "chatstream_gateway_resumes",
            "Streams opened with a Last-Event-ID above 0 (a client resuming)",
            registry=self.registry,
        )
        self.events_relayed = Counter(
            "chatstream_gateway_events_relayed",
            "Job events written to clients, counted when each stream closes",
            registry=self.registry,
        )
        self.ttft = Histogram(
            "chatstream_gateway_ttft_seconds",
            "From the request to the first token written to the client (fresh streams only)",
            buckets=TTFT_BUCKETS_S,
            registry=self.registry,
        )
        self.errors = Counter(
            "chatstream_gateway_errors",
            "Errors sent to clients, by the API's error code (JSON responses and stream errors)",
            ["code"],
            registry=self.registry,
        )
        self.responses = Counter(
            "chatstream_gateway_http_responses",
            "HTTP responses, by status",
            ["status"],
            registry=self.registry,
        )

    def relaying(self) -> AbstractContextManager[None]:
        """Counts a stream as open for as long as its relay loop runs. One tracker serves every
        stream (it holds no state of its own): a generator-based context manager per stream
        would keep its frame alive for the stream's whole life, about 400 bytes."""
        return self._relaying

    def stream_closed(
        self, *, close_reason: str, events: int, ttft_ms: int | None, resumed_from: int
    ) -> None:
        if close_reason == NOT_STREAMED:
            # Its JSON error response is counted by on_response_prepare.
            return
        self.streams.labels(close_reason=close_reason).inc()
        self.events_relayed.inc(events)
        if resumed_from > 0:
            self.resumes.inc()
        elif ttft_ms is not None:
            self.ttft.observe(ttft_ms / 1000)
        if close_reason == SLOW_CLIENT:
            self.errors.labels(code=SLOW_CLIENT).inc()

    def response_prepared(self, response: web.StreamResponse) -> None:
        self.responses.labels(status=str(response.status)).inc()
        if response.status >= 400:
            self.errors.labels(code=_error_code(response)).inc()


METRICS = web.AppKey("metrics", GatewayMetrics)


def setup(app: web.Application, settings: GatewaySettings) -> GatewayMetrics:
    """Attach the metrics to ``app``: the counters, the response hook and ``/metrics``."""
    metrics = app[METRICS] = GatewayMetrics()

    async def on_prepare(_: web.Request, response: web.StreamResponse) -> None:
        metrics.response_prepared(response)

    app.on_response_prepare.append(on_prepare)
    if settings.metrics_port:
        app.cleanup_ctx.append(_separate_port)
    else:
        app.router.add_get(METRICS_PATH, prometheus_metrics)
    return metrics


async def prometheus_metrics(request: web.Request) -> web.StreamResponse:
    """``GET /metrics``: this gateway's series as Prometheus text (no token needed)."""
    return await request.app[METRICS].render(request)


async def _separate_port(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    runner, _ = await start_metrics_site(app[METRICS].render, settings.host, settings.metrics_port)
    yield
    await runner.cleanup()


def _error_code(response: web.StreamResponse) -> str:
    """The ``error.code`` of an API error body; the status for anything else."""
    body = response.body if isinstance(response, web.Response) else None
    if isinstance(body, bytes) and body.startswith(b"{"):
        try:
            code = json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        if isinstance(code, str):
            return code
    return str(response.status)
