"""How a closed stream moves the gateway's series (pure logic, no servers)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import generate_latest

from gateway.metrics import GatewayMetrics
from tests.ops.support import sample_value


def text(metrics: GatewayMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_a_slow_client_cut_counts_as_a_close_and_an_error() -> None:
    metrics = GatewayMetrics()
    with metrics.relaying():
        assert sample_value(text(metrics), "chatstream_gateway_open_streams") == 1
    metrics.stream_closed(close_reason="slow_client", events=40, ttft_ms=12, resumed_from=0)
    out = text(metrics)
    assert sample_value(out, "chatstream_gateway_open_streams") == 0
    assert sample_value(out, "chatstream_gateway_streams_total", close_reason="slow_client") == 1
    assert sample_value(out, "chatstream_gateway_errors_total", code="slow_client") == 1
    assert sample_value(out, "chatstream_gateway_events_relayed_total") == 40


def test_a_resumed_stream_counts_a_resume_and_no_time_to_first_token() -> None:
    metrics = GatewayMetrics()
    metrics.stream_closed(close_reason="end", events=5, ttft_ms=3, resumed_from=17)
    out = text(metrics)
    assert sample_value(out, "chatstream_gateway_resumes_total") == 1
    assert sample_value(out, "chatstream_gateway_ttft_seconds_count") == 0


def test_a_stream_refused_before_its_first_byte_is_not_a_stream() -> None:
    metrics = GatewayMetrics()
    metrics.stream_closed(
        close_reason="error_before_stream", events=0, ttft_ms=None, resumed_from=0
    )
    assert sample_value(text(metrics), "chatstream_gateway_streams_total") is None


def test_error_responses_count_by_their_api_code() -> None:
    metrics = GatewayMetrics()
    metrics.response_prepared(
        web.json_response({"error": {"code": "rate_limited", "message": "slow down"}}, status=429)
    )
    metrics.response_prepared(web.Response(status=502, text="bad gateway"))
    metrics.response_prepared(web.json_response({"ok": True}))
    out = text(metrics)
    assert sample_value(out, "chatstream_gateway_errors_total", code="rate_limited") == 1
    assert sample_value(out, "chatstream_gateway_errors_total", code="502") == 1
    assert sample_value(out, "chatstream_gateway_http_responses_total", status="200") == 1
