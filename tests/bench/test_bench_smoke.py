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

import pytest

from bench.report import targets

pytestmark = [pytest.mark.real, pytest.mark.process, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def test_the_harness_runs_every_measurement_at_a_tiny_scale(tmp_path: Path, namespace: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        # The harness makes one namespace per process group under the test's own, and purges
        # each of them when that group stops.
        env={**os.environ, "BENCH_NAMESPACE_PREFIX": namespace},
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    [result_file] = tmp_path.glob("*.json")
    result = json.loads(result_file.read_text())
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

    assert [row["target"] for row in result["targets"]] == [row["target"] for row in targets({})]
    assert "chatstream benchmark" in completed.stdout and "target" in completed.stdout
