"""OpenTelemetry tracing for both services: off by default, on through the standard OTEL_*
variables (see :class:`shared.settings.TracingSettings` and docs/tracing.md).

The rest of chatstream sees a tiny API: :func:`enabled`, :func:`span` for a child span of the
current one, :func:`current_span`, and the trace context carried in a job's AMQP headers and in
its Redis record. While tracing is off, nothing here makes a span: each call returns at a check
of one module variable, so the hot paths pay nothing measurable.

chatstream's spans go through a tracer of its own (``_tracer``) rather than only through
OpenTelemetry's global provider: that provider can be set once per process, and the tests
install and remove in-memory providers around each test.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from shared.settings import TracingSettings

TRACER_NAME = "chatstream"
TRACEPARENT = "traceparent"

# None while tracing is off: the one thing every call here checks first.
_tracer: Tracer | None = None
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()


def configure_tracing(service: str, settings: TracingSettings) -> TracerProvider | None:
    """Set up the SDK for ``service`` (``gateway``, ``worker``, or ``chatstream`` for both in
    one process) when ``settings`` turn tracing on: the OTLP/HTTP exporter behind a batch
    processor, the sampler of ``OTEL_TRACES_SAMPLER``. Returns the provider, for
    :func:`shutdown_tracing` at exit; None when tracing is off."""
    if not settings.enabled:
        return None
    name = settings.service_name or (
        "chatstream" if service == "chatstream" else f"chatstream-{service}"
    )
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    install(provider)
    return provider


def install(provider: trace.TracerProvider | None) -> None:
    """Make chatstream's spans with ``provider`` (None: turn tracing off)."""
    global _tracer  # noqa: PLW0603 - the switch every call reads, like OpenTelemetry's own
    _tracer = None if provider is None else provider.get_tracer(TRACER_NAME)


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export what is still buffered, then stop (a process's last step)."""
    install(None)
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


def tracer() -> Tracer:
    """The tracer; only while :func:`enabled`."""
    assert _tracer is not None, "tracing is off"
    return _tracer


def span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> AbstractContextManager[Span | None]:
    """A child span of the current one, current inside the ``with``; nothing when off."""
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def current_span() -> Span | None:
    """The current span when tracing is on and it records (is sampled); else None."""
    if _tracer is None:
        return None
    current = trace.get_current_span()
    return current if current.is_recording() else None


@contextlib.contextmanager
def activated(current: Span) -> Iterator[Span]:
    """``current`` as the current span inside the ``with``; ended when it ends. Exceptions are
    left to the caller to judge (a 4xx is not a server error, a cancellation not a failure)."""
    with trace.use_span(current, end_on_exit=True, record_exception=False) as active:
        yield active


def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    links: list[Link] | None = None,
    start_time_ns: int | None = None,
) -> Span:
    """A span started now (or at ``start_time_ns``), not made current; only while enabled."""
    return tracer().start_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        links=links,
        start_time=start_time_ns,
    )


def ids_of(current: Span) -> tuple[str, str]:
    """The trace and span ids as hex, the way trace stores show and search them."""
    context = current.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# Propagation: the W3C trace context (``traceparent``, ``tracestate``), through the propagator
# OTEL_PROPAGATORS names (W3C trace context and baggage by default).


def inject(carrier: dict[str, Any]) -> None:
    """Write the current trace context into ``carrier`` (a job's AMQP headers)."""
    propagate.inject(carrier)


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads AMQP header values, which may arrive as bytes."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        return [value.decode() if isinstance(value, bytes) else str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_HEADER_GETTER = _HeaderGetter()


def extract(carrier: Mapping[str, Any]) -> Context:
    """The trace context ``carrier`` holds; the current one when it holds none (a batch's
    items, handled inside the batch's request, are its children)."""
    return propagate.extract(carrier, context=otel_context.get_current(), getter=_HEADER_GETTER)


def current_traceparent() -> str:
    """The current span's ``traceparent``, to store with a job; "" when off or unsampled."""
    if current_span() is None:
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def link_to(traceparent: str) -> Link | None:
    """A link to the span that ``traceparent`` names; None if it names none."""
    if not traceparent:
        return None
    linked = trace.get_current_span(extract({TRACEPARENT: traceparent})).get_span_context()
    return Link(linked) if linked.is_valid else None


def attach(current: Span) -> Token[Context]:
    """Make ``current`` the current span until :func:`detach` (in the same task)."""
    return otel_context.attach(trace.set_span_in_context(current))


def detach(token: Token[Context]) -> None:
    otel_context.detach(token)


def now_ns() -> int:
    """The wall-clock time spans are stamped in."""
    return time.time_ns()
