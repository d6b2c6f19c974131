"""The benchmark harness at a tiny scale, against the real servers, so that it cannot rot.

It asserts that every measurement ran and produced figures of the right shape, never how fast
they are: speed belongs to ``make bench``, not to tests on a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import nchan
from bench.report import targets

pytestmark = [pytest.mark.real, pytest.mark.process, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(out: Path, namespace: str, *args: str) -> tuple[dict[str, Any], str]:
    """``python -m bench --scale smoke ARGS``: its results and what it printed."""
    # Tracing is what --tracing asks for, whatever the environment running the tests sets.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "smoke", "--out", str(out), *args],
        cwd=ROOT,
        # The harness makes one namespace per process group under the test's own, and purges
        # each of them when that group stops.
        env={**environ, "BENCH_NAMESPACE_PREFIX": namespace},
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    [result_file] = out.glob("*.json")
    return json.loads(result_file.read_text()), completed.stdout


def test_the_harness_runs_every_measurement_at_a_tiny_scale(tmp_path: Path, namespace: str) -> None:
    result, stdout = run_smoke(tmp_path, namespace)
    assert result["tracing"] is False
    failed = {k: v["error"] for k, v in result.items() if isinstance(v, dict) and "error" in v}
    assert not failed

    redis = result["redis_limit"]
    assert redis["rates"]["100"]["latency"]["count"] > 0
    assert redis["max_events_per_s"] > 0

    relay = result["synthetic_relay"]
    phase = relay["latency"]["4"]
    assert phase["open"]["opened"] == 4
    # Every published token reached its stream, and every stream was still open at the end.
    assert phase["client"]["latency"]["count"] == phase["publisher"]["published"]
    assert phase["client"]["still_open"] == 4 and phase["client"]["failed"] == 0
    assert relay["throughput"]["delivered_events_per_s"] > 0
    first_step = next(iter(relay["sustained"]["steps"].values()))
    assert first_step["delivered_events_per_s"] > 0 and "kept_up" in first_step

    assert result["time_to_first_token"]["ttft"]["count"] == 3
    assert result["time_to_first_token"]["errors"] == 0

    idle = result["idle_streams"]
    assert idle["held"] == 10
    assert idle["client"]["heartbeats"] >= 10
    assert idle["bare_aiohttp"]["held"] == 10
    assert idle["bare_aiohttp"]["client"]["heartbeats"] >= 10

    echo = result["echo_relay"]["4"]
    assert echo["client"]["ended"] == 4
    assert echo["latency"]["count"] == echo["client"]["events"]

    chats = result["short_chats"]["1"]
    assert chats["completed"] > 0 and chats["errors"] == 0

    queue = result["queue_ceiling"]
    # Every job confirmed was delivered and acked before the broker's CPU was read.
    assert queue["delivered"] == queue["confirmed"] > 0
    assert queue["in_flight"] == 4 and "broker_cpu_ms_per_job" in queue
    assert "job queue (one quorum queue, 4 publishes awaiting confirms)" in stdout

    check_nchan_row(result["nchan_peer"], stdout)
    check_cluster_relay(result["cluster_relay"], stdout)

    assert [row["target"] for row in result["targets"]] == [row["target"] for row in targets({})]
    assert "chatstream benchmark" in stdout and "target" in stdout


def check_nchan_row(peer: dict[str, Any], stdout: str) -> None:
    """The peer row ran tiny where nchan is installed (``make bench`` installs it, ``make test``
    does not), and was skipped with its reason where it is not."""
    reason = nchan.unavailable()
    if reason is not None:
        assert peer == {"skipped": reason}
        assert f"nchan row: {reason}" in stdout
        return
    phase = peer["latency"]["4"]
    assert phase["client"]["opened"] == 4 and phase["publisher"]["refused"] == 0
    assert phase["client"]["latency"]["count"] == phase["publisher"]["published"] > 0
    assert phase["nginx_cpu_s_per_1000_events"] is None or phase["nginx_cpu_s_per_1000_events"] >= 0
    assert peer["sustained"]["delivered_events_per_s"] >= 0
    assert "nchan peer, 4 streams" in stdout


def check_cluster_relay(cluster: dict[str, Any], stdout: str) -> None:
    """The relay through a cluster of 1 shard and of 3 delivered every event, and gave each
    shard's figures: its jobs and events, and its CPU where the bench group measures it."""
    assert set(cluster["shards"]) == {"1", "3"}
    for shards, phase in cluster["shards"].items():
        assert phase["open"]["opened"] == 4
        published = phase["publisher"]["published"]
        assert phase["client"]["latency"]["count"] == published > 0
        by_shard = phase["by_shard"].values()
        assert len(by_shard) == int(shards)
        assert sum(shard["jobs"] for shard in by_shard) == 4
        assert sum(shard["events"] for shard in by_shard) == published
        for shard in by_shard:
            figures = {"cpu_s_per_1000_events", "cpu_ms_per_write", "idle_cpu_s_per_s"}
            assert figures | {"events_share"} <= set(shard)
        assert f"cluster of {shards} shard(s), 4 streams" in stdout
    shares = cluster["summary"]["events_share_by_shard"]
    assert len(shares["1"]) == 1 and len(shares["3"]) == 3
    assert set(cluster["summary"]["redis_cpu_s_per_1000_events"]) == {"1", "3"}


def test_with_tracing_every_chat_is_traced_and_exported(tmp_path: Path, namespace: str) -> None:
    """``--tracing``: the measure of tracing's cost per chat (docs/performance.md)."""
    result, _ = run_smoke(tmp_path, namespace, "--only", "short_chats", "--tracing")
    assert result["tracing"] is True
    chats = result["short_chats"]["1"]
    assert chats["completed"] > 0 and chats["errors"] == 0
    # The services exported their spans to the sink, which reports what it took on exit.
    [line] = [
        line
        for line in (tmp_path / "otlp-sink.log").read_text().splitlines()
        if line.startswith("otlp_sink:")
    ]
    exports = int(line.split()[1])
    assert exports > 0
    # Each process's log lines of a chat name its trace.
    logs = "".join(p.read_text() for p in tmp_path.glob("*/chats-1-worker0.log"))
    assert '"trace_id":' in logs
