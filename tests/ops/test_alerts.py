"""deploy/observability/alerts.yml: promtool accepts the rules and the Prometheus configuration
that loads them, each alert fires on its trouble in promtool's own rule tests
(tests/ops/alerts_test.yml), and every series an alert reads is one that chatstream or an
exporter of the compose profile really exposes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from launcher.ports import free_port
from tests.ops.redis_server import deployed_redis
from tests.ops.series import PROMETHEUS_SERIES, RABBITMQ_QUEUE_SERIES, exposed_series
from tests.ops.support import family_names, sample_value

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy/observability"
ALERTS = OBSERVABILITY / "alerts.yml"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yml")
# Every alert the operator was promised, by what it watches.
REQUIRED_ALERTS = {
    "ChatstreamStreamsErroring",
    "ChatstreamJobQueueGrowing",
    "ChatstreamNoWorkers",
    "RedisMemoryHigh",
    "ChatstreamDeadLetters",
}
# redis_exporter's series the rules read; test_redis_exporter_... checks a real exporter.
REDIS_SERIES = {"redis_memory_used_bytes", "redis_memory_max_bytes"}
# PromQL words that are not series names.
PROMQL_WORDS = {
    "sum", "rate", "deriv", "absent", "and", "or", "unless", "by", "without", "max", "min",
    "count", "avg", "increase", "on", "ignoring", "group_left", "group_right", "bool",
}  # fmt: skip


def require(tool: str, package: str) -> str:
    """CI installs the tool (tests/install-system-packages.sh); elsewhere it skips."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed; tests/install-system-packages.sh installs it")
        pytest.skip(f"{tool} is not installed (apt-get install {package})")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("promtool", "prometheus"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(args[-1]).parent,
    )


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def series_in(expr: str) -> set[str]:
    """The series names a PromQL expression reads: every identifier outside label matchers,
    ranges, strings and numbers, less PromQL's own words."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare))
    return {name for name in names if name not in PROMQL_WORDS and not name[0].isdigit()}


def test_promtool_accepts_the_rules_and_the_prometheus_configuration() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", str(OBSERVABILITY / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


def test_every_alert_fires_on_its_trouble_in_promtools_rule_tests() -> None:
    result = promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == {rule["alert"] for rule in rules()}


def test_the_promised_alerts_exist_with_a_severity_and_a_summary() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert set(by_name) >= REQUIRED_ALERTS
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


def test_every_series_an_alert_reads_is_exposed() -> None:
    known = set(exposed_series()) | RABBITMQ_QUEUE_SERIES | REDIS_SERIES | PROMETHEUS_SERIES
    for rule in rules():
        read = series_in(rule["expr"])
        assert read, rule["alert"]
        assert read <= known, f"{rule['alert']}: {sorted(read - known)} exposed by nothing"


def test_every_job_an_alert_names_is_scraped() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    for rule in rules():
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, rule["alert"]
    # The per-queue series come from the detailed endpoint, asked for their two families.
    detailed = next(j for j in config["scrape_configs"] if j["job_name"] == "rabbitmq-queues")
    assert detailed["metrics_path"] == "/metrics/detailed"
    assert set(detailed["params"]["family"]) == {"queue_coarse_metrics", "queue_consumer_count"}


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_redis_exporter_reports_memory_against_maxmemory(tmp_path: Path) -> None:
    exporter = require("prometheus-redis-exporter", "prometheus-redis-exporter")
    port = free_port()
    async with deployed_redis(tmp_path, "exporter-test") as server:
        process = await asyncio.create_subprocess_exec(
            exporter,
            f"--redis.addr=redis://127.0.0.1:{server.port}",
            f"--web.listen-address=127.0.0.1:{port}",
            env={**os.environ, "REDIS_PASSWORD": server.password},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            text = await scrape(f"http://127.0.0.1:{port}/metrics")
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)
    assert family_names(text) >= REDIS_SERIES
    assert sample_value(text, "redis_up") == 1
    assert sample_value(text, "redis_memory_max_bytes") == 1024**3


async def scrape(url: str) -> str:
    async with asyncio.timeout(20), aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    text = await response.text()
                    if response.status == 200 and "redis_up" in text:
                        return text
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
