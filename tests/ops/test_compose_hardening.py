"""What an operator signs off in docker-compose.yml and deploy/: every service has a
healthcheck and resource limits; secrets reach each service as files, only the ones it needs,
never through a command line, the environment or .env; the RabbitMQ application user has
only chatstream's own names; nginx follows scaled gateways; Alloy ships the logs with the
labels the dashboard reads; the images are the supported ones."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shared.names import Names
from tests.ops.dashboard import load_dashboard, queries

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|API_KEY", re.I)
# Which secrets each service needs, and no more.
SECRETS_BY_SERVICE = {
    "redis": {"redis_password"},
    "redis-replica": {"redis_password"},
    "sentinel-1": {"redis_password"},
    "sentinel-2": {"redis_password"},
    "sentinel-3": {"redis_password"},
    **{f"redis-node-{i}": {"redis_password"} for i in range(1, 7)},
    "redis-cluster-init": {"redis_password"},
    "rabbitmq": {"rabbitmq_users"},
    "gateway": {
        "redis_password",
        "amqp_password",
        "api_keys",
        "jwt_secret",
        "stream_ticket_secret",
    },
    "worker": {"redis_password", "amqp_password", "llm_api_key"},
    "redis-exporter": {"redis_exporter_passwords"},
    "grafana": {"grafana_admin_password"},
}


def compose() -> dict[str, Any]:
    value = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(value, dict)
    return value


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def secret_names(service: dict[str, Any]) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def one_shot_services() -> set[str]:
    """Services that run once before another starts (a volume's ownership, say): they have no
    state to check while they run."""
    return {
        name
        for service in services().values()
        for name, condition in (service.get("depends_on") or {}).items()
        if isinstance(service.get("depends_on"), dict)
        and condition.get("condition") == "service_completed_successfully"
    }


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if name in one_shot_services():
            assert service.get("restart", "no") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check["test"] and not check.get("disable"), name
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert check["interval"] and check["timeout"] and check["retries"], name


def test_every_service_has_cpu_and_memory_limits() -> None:
    for name, service in services().items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert re.fullmatch(r"\d+[MG]", limits["memory"]), name


def test_redis_limit_leaves_room_above_maxmemory_for_a_rewrite_fork() -> None:
    conf = (DEPLOY / "redis/redis.conf").read_text()
    maxmemory = re.search(r"^maxmemory (\d+)gb$", conf, re.M)
    assert maxmemory is not None
    limit = services()["redis"]["deploy"]["resources"]["limits"]["memory"]
    assert limit.endswith("G") and int(limit[:-1]) >= 2 * int(maxmemory.group(1))


def test_no_service_takes_a_secret_from_its_command_or_environment() -> None:
    for name, service in services().items():
        environment = service.get("environment", {})
        for variable, value in environment.items():
            if SECRET_WORDS.search(variable):
                # Only a path to a secret file.
                assert variable.endswith("_FILE"), f"{name}: {variable}"
                assert str(value).startswith("/run/secrets/"), f"{name}: {variable}"
            # No URL carries a password (user:password@host).
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", str(value)), f"{name}: {variable}"
        command = " ".join(map(str, service.get("command", []) or []))
        assert "--requirepass" not in command, name
        # .env, then at most the Redis topology's file of deploy/redis, which holds no secret
        # (test_compose_sentinel.py).
        env_files = service.get("env_file", [])
        env_files = [env_files] if isinstance(env_files, str) else env_files
        assert env_files[:1] in ([], [".env"]), name
        assert all(f.startswith("deploy/redis/") for f in env_files[1:]), name
    # Nothing secret is interpolated into the file from .env or the shell.
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{\w*(PASSWORD|SECRET|API_KEY)", text)


def test_each_service_gets_only_the_secrets_it_needs_through_files() -> None:
    declared = compose()["secrets"]
    for name, service in services().items():
        assert secret_names(service) == SECRETS_BY_SERVICE.get(name, set()), name
        for secret in secret_names(service):
            assert declared[secret]["file"].startswith("./secrets/"), secret
        # Every *_FILE variable names a secret this service is given.
        for variable, value in service.get("environment", {}).items():
            if variable.endswith("_FILE"):
                assert value.removeprefix("/run/secrets/") in secret_names(service), variable


def test_env_example_holds_no_secret() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and SECRET_WORDS.search(match.group(1)) and not match.group(1).endswith("_FILE"):
            assert match.group(2) == "", f".env.example sets {match.group(1)}"


def made_secrets(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    subprocess.run(
        ["bash", str(DEPLOY / "make-secrets.sh"), str(directory)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return directory


def test_make_secrets_creates_every_file_compose_mounts_and_keeps_them(tmp_path: Path) -> None:
    directory = made_secrets(tmp_path)
    for secret in compose()["secrets"].values():
        assert (directory / Path(secret["file"]).name).is_file(), secret["file"]
    assert directory.stat().st_mode & 0o077 == 0
    before = (directory / "redis_password").read_text()
    made_secrets(tmp_path)
    assert (directory / "redis_password").read_text() == before
    exporter = json.loads((directory / "redis_exporter_passwords.json").read_text())
    assert exporter == {"redis://redis:6379": before.strip()}


def test_rabbitmq_application_user_has_only_chatstreams_names(tmp_path: Path) -> None:
    users = json.loads((made_secrets(tmp_path) / "rabbitmq_users.json").read_text())
    amqp_password = (tmp_path / "secrets/amqp_password").read_text().strip()
    (user,) = users["users"]
    assert user["name"] == "chatstream" and user["password"] == amqp_password
    # No management tag at all, let alone administrator.
    assert user["tags"] == []
    url = services()["gateway"]["environment"]["AMQP_URL"]
    assert url.startswith(f"amqp://{user['name']}@")
    (permission,) = users["permissions"]
    names = Names()
    own = [
        names.jobs_exchange,
        names.jobs_queue,
        names.dead_letter_exchange,
        names.dead_letter_queue,
    ]
    definitions = json.loads((DEPLOY / "rabbitmq/definitions.json").read_text())
    own += [e["name"] for e in definitions["exchanges"]] + [
        q["name"] for q in definitions["queues"]
    ]
    for kind in ("configure", "write", "read"):
        pattern = re.compile(permission[kind])
        assert all(pattern.match(name) for name in own), kind
        for foreign in ("amq.default", "amq.topic", "other.jobs", "amq.gen-1", ""):
            assert not pattern.match(foreign), (kind, foreign)


def test_images_are_the_supported_ones() -> None:
    images = {name: service.get("image", "") for name, service in services().items()}
    assert re.fullmatch(r"rabbitmq:4\.\d+-alpine", images["rabbitmq"])
    assert images["alloy"].startswith("grafana/alloy:v1.")
    assert "promtail" not in images and not any("promtail" in i for i in images.values())
    nginx = re.fullmatch(r"nginx:1\.(\d+)-alpine", images["nginx"])
    # `resolve` on an upstream server arrived in nginx 1.27.3.
    assert nginx is not None and int(nginx.group(1)) >= 28
    plugins = (DEPLOY / "rabbitmq/enabled_plugins").read_text()
    assert "rabbitmq_prometheus" in plugins


def test_nginx_re_resolves_the_gateways_by_itself() -> None:
    conf = (DEPLOY / "nginx/chatstream.conf").read_text()
    resolver = re.search(r"^resolver 127\.0\.0\.11 valid=(\d+)s", conf, re.M)
    assert resolver is not None and int(resolver.group(1)) <= 30
    upstream = re.search(r"upstream chatstream_gateways \{(.*?)\n\}", conf, re.S)
    assert upstream is not None
    assert re.search(r"^\s*zone chatstream_gateways \d+k;", upstream.group(1), re.M)
    assert re.search(r"^\s*server gateway:8080 resolve[ ;]", upstream.group(1), re.M)


def test_alloy_ships_the_logs_with_the_labels_the_dashboard_reads() -> None:
    alloy = (DEPLOY / "observability/config.alloy").read_text()
    labels_block = re.search(r"stage\.labels \{\s*values = \{(.*?)\}", alloy, re.S)
    assert labels_block is not None
    labels = set(re.findall(r"(\w+)\s*=", labels_block.group(1)))
    assert labels == {"service", "event", "level"}
    parsed = re.search(r"stage\.json \{\s*expressions = \{(.*?)\}", alloy, re.S)
    assert parsed is not None and labels <= set(re.findall(r"(\w+)\s*=", parsed.group(1)))
    # Only this compose project's containers, and of them the gateway and the worker.
    assert f'"com.docker.compose.project={compose()["name"]}"' in alloy
    assert 'regex         = "gateway|worker"' in alloy
    assert "http://loki:3100/loki/api/v1/push" in alloy
    # Every label a dashboard log query selects on is one Alloy sets.
    for expr in queries(load_dashboard(), "loki"):
        selector = re.match(r"[^{]*\{([^}]*)\}", expr)
        assert selector is not None, expr
        used = set(re.findall(r"(\w+)\s*[=!]~?", selector.group(1)))
        assert used <= labels, expr


def test_systemd_units_get_the_same_secrets_as_credentials() -> None:
    for service in ("gateway", "worker"):
        unit = (DEPLOY / f"systemd/chatstream-{service}@.service").read_text()
        credentials = dict(re.findall(r"^LoadCredential=(\w+):(\S+)$", unit, re.M))
        assert set(credentials) == SECRETS_BY_SERVICE[service], service
        assert all(p == f"/etc/chatstream/secrets/{n}" for n, p in credentials.items()), service
        # Each credential is read through its *_FILE setting, as under compose.
        environment = services()[service]["environment"]
        files = {k: v for k, v in environment.items() if k.endswith("_FILE")}
        for variable, path in files.items():
            name = path.removeprefix("/run/secrets/")
            assert re.search(rf"\b{variable}=%d/{name}\b", unit), (service, variable)


def test_systemd_units_set_per_instance_settings_where_the_settings_file_cannot() -> None:
    # systemd lets EnvironmentFile= override Environment=: a key that both the unit and the
    # settings file (a copy of .env.example) set would take the file's value, and every
    # gateway instance would listen on the file's one host and port.
    in_settings_file = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    per_instance = {
        "gateway": {"GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "%i", "METRICS_PORT": None},
        "worker": {"WORKER_ID": "%H-worker-%i", "WORKER_METRICS_PORT": None},
    }
    for service, settings in per_instance.items():
        unit = (DEPLOY / f"systemd/chatstream-{service}@.service").read_text()
        assert "EnvironmentFile=/etc/chatstream/chatstream.env" in unit, service
        set_by_unit = {
            key
            for line in re.findall(r"^Environment=(.*)$", unit, re.M)
            for key in re.findall(r"([A-Z_]+)=", line)
        }
        assert not set_by_unit & in_settings_file, (service, set_by_unit & in_settings_file)
        (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, re.M)
        for key, value in settings.items():
            assert key in in_settings_file, key
            assert re.search(rf"\b{key}={re.escape(value) if value else ''}", exec_start), key
