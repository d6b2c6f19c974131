"""Tracing's switch and its small API: off unless the standard OTEL_* variables turn it on, and
while off, no span and no trace context anywhere."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import job_trace, tracing
from shared.job import Job
from shared.settings import SettingsError, TracingSettings

ENDPOINT = "http://127.0.0.1:4318"
JOB = Job(job_id="j", session_id="s", message_id="m", user_id="u", pipeline="echo", text="hello")


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, False),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        # A service name or a sampler alone turns nothing on.
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
    ],
)
def test_tracing_is_on_only_when_the_standard_variables_ask_for_it(
    environ: dict[str, str], enabled: bool
) -> None:
    assert TracingSettings.from_env(environ).enabled is enabled


def test_an_exporter_chatstream_does_not_ship_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="OTEL_TRACES_EXPORTER"):
        TracingSettings.from_env({"OTEL_TRACES_EXPORTER": "jaeger"})


def test_the_service_name_comes_from_otel_service_name() -> None:
    assert TracingSettings.from_env({"OTEL_SERVICE_NAME": "edge"}).service_name == "edge"
    assert TracingSettings.from_env({}).service_name is None


def test_settings_that_leave_tracing_off_configure_nothing() -> None:
    assert tracing.configure_tracing("gateway", TracingSettings()) is None
    assert not tracing.enabled()


def test_while_off_nothing_makes_a_span_or_a_trace_context() -> None:
    assert not tracing.enabled()
    with tracing.span("auth") as span:
        assert span is None
    assert tracing.current_span() is None
    assert tracing.current_traceparent() == ""
    with job_trace.publishing(JOB, "rabbitmq", "jobs") as headers:
        assert headers is None


def test_while_on_a_span_is_current_and_its_traceparent_names_it(
    span_exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("outer") as span:
        assert span is not None and tracing.current_span() is span
        trace_id, span_id = tracing.ids_of(span)
        assert tracing.current_traceparent().split("-")[1:3] == [trace_id, span_id]
        link = tracing.link_to(tracing.current_traceparent())
        assert link is not None and link.context.span_id == int(span_id, 16)
    assert tracing.link_to("") is None and tracing.link_to("not-a-traceparent") is None
    assert [s.name for s in span_exporter.get_finished_spans()] == ["outer"]


def test_a_progress_steps_metadata_becomes_event_attributes(
    span_exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("job") as span:
        assert span is not None
        job_trace.record_progress(
            span,
            "execution",
            "Writing the answer",
            "2 passages",
            {"generator": "extractive", "chunks": 3, "retrieved": [{"id": 1}], "none": None},
        )
    [event] = span_exporter.get_finished_spans()[0].events
    assert event.name == "progress execution"
    assert dict(event.attributes or {}) == {
        "step": "execution",
        "message": "Writing the answer",
        "details": "2 passages",
        "metadata.generator": "extractive",
        "metadata.chunks": 3,
        "metadata.retrieved": '[{"id": 1}]',
    }
