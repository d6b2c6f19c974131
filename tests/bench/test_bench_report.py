"""The harness's pure parts: percentiles, the targets checked against a result, the nchan
peer row's ratios, and the Redis Cluster rows."""

from __future__ import annotations

from typing import Any

from bench.peer_report import ratios
from bench.report import table, targets
from bench.stats import percentile, summarize_ns


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert percentile(ordered, 50) == 50
    assert percentile(ordered, 99) == 99
    assert percentile(ordered, 99.9) == 100
    assert percentile([7.0], 99.9) == 7.0


def test_summary_is_in_milliseconds_and_empty_samples_have_only_a_count() -> None:
    summary = summarize_ns([1_000_000, 2_000_000, 3_000_000])
    assert summary["count"] == 3
    assert summary["p50_ms"] == 2.0 and summary["max_ms"] == 3.0 and summary["mean_ms"] == 2.0
    assert summarize_ns([]) == {"count": 0}


def _chats(per_s: float, errors: int, elapsed_s: float) -> dict[str, Any]:
    return {"chats_per_s": per_s, "errors": errors, "elapsed_s": elapsed_s, "cpu_ms_per_chat": None}


def _result(
    p99_ms: float, errors: int, sustained_per_s: float = 310.0, idle_kib: float = 15.0
) -> dict[str, Any]:
    latency = {"p50_ms": 0.5, "p99_ms": p99_ms, "p999_ms": 4.0, "count": 10}
    return {
        "config": {"sustain_workers": 2},
        "synthetic_relay": {
            "latency": {"1000": {"rate": 2000, "client": {"latency": latency}}},
            "throughput": {"delivered_events_per_s": 18_000},
            "sustained": {"delivered_events_per_s": 21_000},
        },
        "idle_streams": {
            "held": 10_000,
            "bytes_per_connection": round(idle_kib * 1024),
            "bare_aiohttp": {"held": 10_000, "bytes_per_connection": round(14.05 * 1024)},
        },
        "short_chats": {
            "1": _chats(340.0, 0, 15.0),
            "2": _chats(sustained_per_s, errors, 60.0),
        },
    }


def test_targets_compare_each_figure_with_its_bound() -> None:
    met = {row["target"]: row["met"] for row in targets(_result(p99_ms=2.5, errors=0))}
    assert met["relay p50 at 1,000 streams (ms)"] is True
    assert met["relay p99 at 1,000 streams (ms)"] is True
    assert met["delivered events/s, 1,000 streams"] is True
    assert met["idle stream memory over bare aiohttp (KiB)"] is True
    assert met["added TTFT p50 (ms)"] is None
    assert met["short chats/s end to end, for a minute"] is True
    assert met["errors in that minute"] is True

    missed = {row["target"]: row["met"] for row in targets(_result(p99_ms=3.5, errors=1))}
    assert missed["relay p99 at 1,000 streams (ms)"] is False
    assert missed["errors in that minute"] is False


def test_the_chats_target_reads_the_minute_long_run_not_the_fastest() -> None:
    rows = targets(_result(p99_ms=2.5, errors=0, sustained_per_s=280.0))
    chats = next(row for row in rows if row["target"] == "short chats/s end to end, for a minute")
    # The 15 s run with one worker made 340/s; the minute at 280/s misses the target.
    assert chats["value"] == 280.0
    assert chats["met"] is False


def test_idle_memory_is_bounded_above_the_bare_aiohttp_handler_of_the_same_run() -> None:
    def memory(result: dict[str, Any]) -> dict[str, Any]:
        rows = targets(result)
        return next(r for r in rows if r["target"] == "idle stream memory over bare aiohttp (KiB)")

    within = memory(_result(p99_ms=2.5, errors=0, idle_kib=15.0))
    assert within["value"] == 0.95 and within["met"] is True
    over = memory(_result(p99_ms=2.5, errors=0, idle_kib=15.5))
    assert over["value"] == 1.45 and over["met"] is False
    without_bare = _result(p99_ms=2.5, errors=0)
    del without_bare["idle_streams"]["bare_aiohttp"]
    assert memory(without_bare)["met"] is None


def test_a_failed_measurement_leaves_the_rest_of_the_table() -> None:
    result = _result(p99_ms=2.5, errors=0)
    result["echo_relay"] = {"error": "TimeoutError()"}
    result["targets"] = targets(result)
    printed = table(result)
    assert "relay, synthetic, 1000 streams" in printed
    assert "echo workers" not in printed


def _with_nchan(result: dict[str, Any]) -> dict[str, Any]:
    latency = {"p50_ms": 0.25, "p99_ms": 2.0, "p999_ms": 3.0, "count": 10}
    result["synthetic_relay"]["latency"]["1000"]["gateway_cpu_s_per_1000_events"] = 0.03
    result["nchan_peer"] = {
        "latency": {
            "1000": {
                "rate": 2000,
                "client": {"latency": latency},
                "nginx_cpu_s_per_1000_events": 0.01,
            }
        },
        "sustained": {"delivered_events_per_s": 7_000, "steps": {}},
    }
    return result


def test_the_nchan_row_sets_chatstream_over_nchan_from_the_same_result() -> None:
    rows = {row["figure"]: row for row in ratios(_with_nchan(_result(p99_ms=2.5, errors=0)))}
    assert rows["relay p50 at 1000 streams (ms)"]["ratio"] == 2.0
    assert rows["relay p99 at 1000 streams (ms)"]["ratio"] == 1.25
    assert rows["CPU-s per 1,000 events at 1000 streams"]["ratio"] == 3.0
    assert rows["delivered events/s kept up with"]["ratio"] == 3.0
    printed = table(_with_nchan(_result(p99_ms=2.5, errors=0)))
    assert "nchan peer, 1000 streams, 2,000 ev/s" in printed
    assert "nchan delivered ev/s kept up with: 7,000" in printed


def test_a_skipped_nchan_row_prints_its_reason_and_no_ratio() -> None:
    result = _result(p99_ms=2.5, errors=0)
    result["nchan_peer"] = {"skipped": "nginx is not installed"}
    assert all(row["ratio"] is None for row in ratios(result))
    assert "nchan row: nginx is not installed" in table(result)
    del result["nchan_peer"]
    assert "nchan row: not run (--only)" in table(result)


def test_the_cluster_rows_give_each_shard_its_share_and_cost() -> None:
    latency = {"p50_ms": 0.4, "p99_ms": 2.0, "p999_ms": 6.0, "count": 40_000}
    shard = {
        "jobs": 334,
        "events": 13_360,
        "events_share": 0.334,
        "events_per_write": 1.2,
        "cpu_s_per_1000_events": 0.064,
        "cpu_ms_per_write": 0.096,
        "idle_cpu_s_per_s": 0.0012,
    }
    phase = {
        "client": {"latency": latency},
        "delivered_events_per_s": 2_000,
        "gateway_cpu_s_per_1000_events": 0.065,
        "redis_cpu_s_per_1000_events": 0.065,
        "redis_cpu_ms_per_write": 0.096,
        "by_shard": {"127.0.0.1:7001": shard},
    }
    result = _result(p99_ms=2.5, errors=0)
    result["cluster_relay"] = {"streams": 1000, "rate": 2000, "shards": {"3": phase}}
    printed = table(result)
    assert "relay, cluster of 3 shard(s), 1000 streams" in printed
    assert "cluster of 3 shard(s), 2,000 ev/s: delivered ev/s 2,000" in printed
    assert (
        "shard 127.0.0.1:7001: jobs 334, events 13,360 (share 0.334, 1.2 a write), CPU-s per "
        "1,000 of its events 0.064, CPU-ms per write 0.096, idle: 1.2 CPU-ms a second"
    ) in printed
    result["cluster_relay"] = {"error": "TimeoutError()"}
    assert "cluster of" not in table(result)
