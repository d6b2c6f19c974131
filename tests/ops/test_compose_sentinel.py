"""The compose sentinel profile: `redis` as the first primary, a replica and three sentinels,
only under `--profile sentinel`; the gateways and workers pointed at the sentinels by
REDIS_TOPOLOGY=sentinel and at the one `redis` without it. The structure is read from
docker-compose.yml (no Docker engine runs here); the scripts the containers run are run on real
redis-server processes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError, RedisError

from launcher.local_redis import poll
from launcher.ports import HOST, free_port
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings, SentinelSettings
from tests.ops.test_compose_hardening import compose, secret_names, services

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
SENTINEL_GROUP = {"redis-replica", *SENTINELS}
DEFAULT_STACK = {"redis", "rabbitmq", "gateway", "worker", "nginx"}
SENTINEL_PORT = 26379
START_TIMEOUT_S = 30.0


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}`` and ``${VAR:-default}``, enough for the values these tests read."""

    def one(match: re.Match[str]) -> str:
        value = variables.get(match.group(1), "")
        return value or (match.group(2) or "")

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", one, value)


def env_files(service: dict[str, Any], variables: dict[str, str]) -> list[Path]:
    """The service's env files other than the operator's .env, interpolated, in order."""
    files = service.get("env_file", [])
    files = [files] if isinstance(files, str) else files
    paths = [interpolate(f if isinstance(f, str) else f["path"], variables) for f in files]
    return [ROOT / path for path in paths if path != ".env"]


def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name: value for name, value in pairs}


def app_environment(name: str, **variables: str) -> dict[str, str]:
    """What compose hands the service, less the operator's .env: its env files in order, then
    its ``environment``, which wins."""
    service = services()[name]
    environment: dict[str, str] = {}
    for path in env_files(service, variables):
        environment |= read_env_file(path)
    environment |= {k: str(v) for k, v in service.get("environment", {}).items()}
    return environment


def sentinel_environment(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in services()[name]["environment"].items()}


def test_the_sentinel_group_runs_only_under_its_profile() -> None:
    every = services()
    profiled = {
        name for name, service in every.items() if "sentinel" in service.get("profiles", [])
    }
    assert profiled == SENTINEL_GROUP
    for name in SENTINEL_GROUP:
        assert every[name]["profiles"] == ["sentinel"], name
    # Without a profile: the same five services as ever, Redis alone among them.
    default = {name for name, service in every.items() if not service.get("profiles")}
    assert default == DEFAULT_STACK


def test_without_the_topology_setting_the_apps_use_the_one_redis() -> None:
    for name in ("gateway", "worker"):
        environment = app_environment(name)
        assert environment["REDIS_URL"] == "redis://redis:6379/0", name
        assert environment["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password", name
        assert not {k for k in environment if k.startswith("REDIS_SENTINEL")}, name
        # The same as with REDIS_TOPOLOGY=standalone, the default the compose file names.
        assert app_environment(name, REDIS_TOPOLOGY="standalone") == environment


def test_with_the_sentinel_topology_the_apps_ask_the_three_sentinels(tmp_path: Path) -> None:
    password_file = tmp_path / "redis_password"
    password_file.write_text("pw\n")
    for name in ("gateway", "worker"):
        environment = app_environment(name, REDIS_TOPOLOGY="sentinel")
        assert "REDIS_URL" not in environment, name
        sentinels = environment["REDIS_SENTINELS"].split(",")
        assert sentinels == [f"{s}:{SENTINEL_PORT}" for s in SENTINELS], name
        for sentinel in SENTINELS:
            assert (
                sentinel_environment(sentinel)["SENTINEL_SERVICE"]
                == (environment["REDIS_SENTINEL_SERVICE"])
            )
        # Both passwords are files the service is given.
        for variable in ("REDIS_PASSWORD_FILE", "REDIS_SENTINEL_PASSWORD_FILE"):
            path = environment[variable]
            assert path.startswith("/run/secrets/"), (name, variable)
            assert path.removeprefix("/run/secrets/") in secret_names(services()[name])
        # chatstream's own settings take it, as the services will at start.
        files = {k: str(password_file) for k in environment if k.endswith("_FILE")}
        settings = ConnectionSettings.redis_from_env({**environment, **files})
        assert settings.redis_url is None
        assert settings.sentinel == SentinelSettings(
            tuple((s, SENTINEL_PORT) for s in SENTINELS), "chatstream", "pw"
        )
        assert settings.redis_password == "pw"


def test_every_topology_has_its_env_file_and_none_holds_a_secret() -> None:
    gateway = services()["gateway"]
    assert services()["worker"]["env_file"] == gateway["env_file"]
    # .env first: the topology's file overrides what the operator's .env says about Redis.
    assert gateway["env_file"][0] == ".env"
    for topology in ("", "standalone", "sentinel", "cluster"):
        (path,) = env_files(gateway, {"REDIS_TOPOLOGY": topology})
        assert path.parent == DEPLOY / "redis", topology
        for variable, value in read_env_file(path).items():
            if re.search(r"PASSWORD|SECRET|API_KEY", variable, re.I):
                assert variable.endswith("_FILE") and value.startswith("/run/secrets/")
    # The variable is documented where the operator sets it.
    assert re.search(r"^# REDIS_TOPOLOGY=standalone$", (ROOT / ".env.example").read_text(), re.M)


def test_the_sentinels_watch_redis_with_a_quorum_of_two_of_three() -> None:
    every = services()
    peers = " ".join(f"{name}:{SENTINEL_PORT}" for name in SENTINELS)
    for name in SENTINELS:
        environment = sentinel_environment(name)
        # Each announces its own service name, which the apps and the other sentinels resolve.
        assert environment["SENTINEL_ANNOUNCE_HOST"] == name
        assert environment["SENTINEL_PEERS"] == peers
        assert environment["SENTINEL_PRIMARY"] == "redis:6379"
        # A majority of the three, so that a lone sentinel cannot start a failover.
        assert int(environment["SENTINEL_QUORUM"]) == len(SENTINELS) // 2 + 1
        service = every[name]
        assert service["image"] == every["redis"]["image"]
        assert service["command"][-2:] == ["/run/sentinel/sentinel.conf", "--sentinel"]
        # The config it rewrites is on a tmpfs, written by sentinel.sh; nothing else mounted
        # from the repository is writable.
        assert "/run/sentinel" in service["tmpfs"]
        assert all(volume.endswith(":ro") for volume in service["volumes"])
        assert any("deploy/redis/sentinel.sh" in volume for volume in service["volumes"])
        assert service["depends_on"] == {
            "redis": {"condition": "service_healthy"},
            "redis-replica": {"condition": "service_healthy"},
        }
        check = service["healthcheck"]["test"][-1]
        assert "-p 26379" in check and "ckquorum chatstream" in check
        assert "/run/secrets/redis_password" in check
        assert service["restart"] == "unless-stopped"
        assert secret_names(service) == {"redis_password"}
    replica = every["redis-replica"]
    assert replica["command"][-3:] == ["--replicaof", "redis", "6379"]
    assert replica["environment"]["REDIS_ANNOUNCE_HOST"] == "redis-replica"
    # The same server as `redis`, on data of its own.
    for key in ("image", "entrypoint", "healthcheck", "deploy", "secrets", "tmpfs", "restart"):
        assert replica[key] == every["redis"][key], key
    data = [v for v in replica["volumes"] if v.endswith(":/data")]
    assert data == ["redis-replica-data:/data"] and "redis-replica-data" in compose()["volumes"]
    assert "redis-replica-data:/data" not in every["redis"]["volumes"]


# --- the containers' scripts, on real redis-server processes -------------------------------


@dataclass
class Server:
    """One process started as its container starts it, on 127.0.0.1 and a port of its own; the
    compose service names are all ``localhost`` here."""

    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def client(self, password: str | None) -> Redis:
        return Redis(
            host=HOST, port=self.port, password=password, socket_timeout=2, decode_responses=True
        )

    def wait_until(self, password: str, ready: Callable[[Redis], bool], what: str) -> None:
        def alive() -> None:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()

        with self.client(password) as client:
            if not poll(client, ready, alive):
                raise AssertionError(f"{self.name} never {what}:\n{self.log.read_text()}")


@dataclass
class Group:
    primary: Server
    replica: Server
    sentinels: list[Server]
    password: str

    def sentinel_says(self, sentinel: Server) -> tuple[str, int] | None:
        with sentinel.client(self.password) as client:
            address = client.sentinel_get_master_addr_by_name("chatstream")
        return None if address is None else (str(address[0]), int(address[1]))


def data_node(tmp: Path, name: str, env: dict[str, str], *replica_of: str) -> Server:
    port, directory = free_port(), tmp / name
    directory.mkdir()
    include = directory / "run/password.conf"
    # A copy: a sentinel has Redis rewrite its config (compose mounts it read-only).
    config = directory / "redis.conf"
    shutil.copy(DEPLOY / "redis/redis.conf", config)
    argv = ["sh", str(DEPLOY / "redis/with-password.sh"), "redis-server"]
    argv += [str(config), "--include", str(include), *replica_of]
    argv += ["--port", str(port), "--bind", HOST, "--dir", str(directory), "--daemonize", "no"]
    env = env | {"REDIS_PASSWORD_INCLUDE": str(include), "REDIS_ANNOUNCE_HOST": "localhost"}
    return Server(name, port, argv, env, directory / "log")


def sentinel_node(tmp: Path, name: str, port: int, env: dict[str, str], peers: str) -> Server:
    directory = tmp / name
    directory.mkdir()
    argv = ["sh", str(DEPLOY / "redis/sentinel.sh"), "redis-server", str(directory / "s.conf")]
    argv += ["--sentinel", "--bind", HOST, "--daemonize", "no"]
    env = env | {
        "SENTINEL_CONF": str(directory / "s.conf"),
        "SENTINEL_ANNOUNCE_HOST": "localhost",
        "SENTINEL_PORT": str(port),
        "SENTINEL_PEERS": peers,
        # Quick, for a test on a loaded machine; compose keeps the script's defaults.
        "SENTINEL_DOWN_AFTER_MS": "1000",
        "SENTINEL_FAILOVER_TIMEOUT_MS": "5000",
    }
    return Server(name, port, argv, env, directory / "log")


def role(client: Redis) -> str:
    return str(client.info("replication")["role"])


@contextmanager
def sentinel_group(tmp: Path, password: str) -> Iterator[Group]:
    password_file = tmp / "redis_password"
    password_file.write_text(password + "\n")
    env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD_FILE": str(password_file)}
    primary = data_node(tmp, "redis", env)
    replica = data_node(tmp, "redis-replica", env, "--replicaof", "localhost", str(primary.port))
    ports = [free_port() for _ in SENTINELS]
    peers = " ".join(f"localhost:{port}" for port in ports)
    compose_env = env | {"SENTINEL_PRIMARY": f"localhost:{primary.port}"}
    sentinels = [
        sentinel_node(tmp, name, port, compose_env, peers)
        for name, port in zip(SENTINELS, ports, strict=True)
    ]
    group = Group(primary, replica, sentinels, password)
    with ExitStack() as stack:
        for server in [primary, replica, *sentinels]:
            stack.callback(server.stop)
        primary.start()
        primary.wait_until(password, lambda c: bool(c.ping()), "answered")
        replica.start()
        replica.wait_until(
            password,
            lambda c: c.info("replication")["master_link_status"] == "up",
            "synced",
        )
        for sentinel in sentinels:
            sentinel.start()
        for sentinel in sentinels:
            sentinel.wait_until(password, sees_the_group, "saw the others")
        yield group


def has_quorum(client: Redis) -> bool:
    """What the compose healthcheck asks."""
    return str(client.execute_command("SENTINEL CKQUORUM chatstream")).startswith("OK")


def sees_the_group(client: Redis) -> bool:
    state = client.sentinel_master("chatstream")
    assert isinstance(state, dict)
    others, replicas = int(state["num-other-sentinels"]), int(state["num-slaves"])
    return has_quorum(client) and others == len(SENTINELS) - 1 and replicas == 1


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_the_scripts_make_a_sentinel_group_chatstream_follows_over_a_failover(
    tmp_path: Path,
) -> None:
    password = "s3cret:@/word"
    with sentinel_group(tmp_path, password) as group:
        primary, replica = group.primary, group.replica
        for sentinel in group.sentinels:
            # Host names, as announced, and every peer and the replica known.
            assert group.sentinel_says(sentinel) == ("localhost", primary.port)
            with sentinel.client(password) as client:
                state = client.sentinel_master("chatstream")
                assert isinstance(state, dict)
                assert int(state["num-other-sentinels"]) == 2 and int(state["quorum"]) == 2
                assert int(state["num-slaves"]) == 1
            # Nobody talks to a sentinel without the password.
            with sentinel.client(None) as anonymous, pytest.raises(AuthenticationError):
                anonymous.sentinel_masters()
            # The password is on no command line.
            assert sentinel.process is not None
            cmdline = await asyncio.to_thread(
                Path(f"/proc/{sentinel.process.pid}/cmdline").read_bytes
            )
            assert b"[sentinel]" in cmdline and password.encode() not in cmdline
        # chatstream's settings as deploy/redis/sentinel.env gives them, on these ports.
        environment = read_env_file(DEPLOY / "redis/sentinel.env")
        environment["REDIS_SENTINELS"] = ",".join(f"{HOST}:{s.port}" for s in group.sentinels)
        environment |= {
            k: str(tmp_path / "redis_password") for k in environment if k.endswith("_FILE")
        }
        environment["REDIS_PASSWORD_FILE"] = str(tmp_path / "redis_password")
        client = connect_redis(ConnectionSettings.redis_from_env(environment))
        try:
            await client.set("chatstream:probe", "before")
            # A failover: the replica is promoted, and `redis` becomes its replica (masterauth).
            with group.sentinels[0].client(password) as sentinel:
                sentinel.sentinel_failover("chatstream")
            for sentinel in group.sentinels:
                sentinel.wait_until(
                    password,
                    lambda c: c.sentinel_get_master_addr_by_name("chatstream")[1] == replica.port,
                    "named the new primary",
                )
            primary.wait_until(
                password,
                lambda c: (
                    role(c) == "slave" and c.info("replication")["master_link_status"] == "up"
                ),
                "followed the new primary",
            )
            # The apps write to the new primary without being told.
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    await client.set("chatstream:probe", "after")
                    break
                except RedisError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
            with replica.client(password) as promoted:
                assert role(promoted) == "master"
                assert promoted.get("chatstream:probe") == "after"
        finally:
            await client.aclose()
        # A sentinel restarted after the failover watches the new primary, not `redis`.
        restarted = group.sentinels[2]
        restarted.stop()
        restarted.start()
        restarted.wait_until(password, sees_the_group, "saw the group again")
        assert group.sentinel_says(restarted) == ("localhost", replica.port)
        # With every sentinel restarted at once, the one `redis` follows is still found.
        for sentinel in group.sentinels:
            sentinel.stop()
        for sentinel in group.sentinels:
            sentinel.start()
        for sentinel in group.sentinels:
            sentinel.wait_until(password, sees_the_group, "saw the group after a restart")
            assert group.sentinel_says(sentinel) == ("localhost", replica.port)
