"""Local Redis topologies of plain ``redis-server`` processes, on free ports in a folder of
their own: a Redis Cluster (3 primaries, 3 replicas; or primaries alone, for the benchmark) and
a Sentinel group (a primary, a replica and 3 sentinels). ``make redis-cluster`` runs a cluster
and ``make redis-sentinel`` a Sentinel group, each until Ctrl-C, printing the settings that
point ``make stack`` at it; the tests start their own, so the machine's shared Redis is never
touched.

    python -m launcher.local_redis cluster|sentinel [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import RedisError

from launcher.ports import HOST, free_port

SENTINEL_SERVICE = "chatstream"
# Long enough for a loaded 2-core machine; a real deployment sets its own.
SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_FAILOVER_TIMEOUT_MS = 5000
CLUSTER_NODE_TIMEOUT_MS = 2000
STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServerTls:
    """A server that speaks TLS alone: its certificate and key, which it also shows as a
    client (to its primary, to the other sentinels), and the CA that signed every side's."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    # Whether clients must show a certificate the CA signed (mutual TLS).
    auth_clients: bool = False

    def server_args(self, port: int) -> list[str]:
        # tls-replication: a replica's link to its primary and a sentinel's every link (to
        # the servers and to the other sentinels) are TLS too.
        return [
            *("--port", "0", "--tls-port", str(port), "--tls-replication", "yes"),
            *("--tls-cert-file", str(self.cert_file), "--tls-key-file", str(self.key_file)),
            *("--tls-ca-cert-file", str(self.ca_file)),
            *("--tls-auth-clients", "yes" if self.auth_clients else "no"),
        ]

    def client_options(self) -> dict[str, Any]:
        return {
            "ssl": True,
            "ssl_ca_certs": str(self.ca_file),
            "ssl_certfile": str(self.cert_file),
            "ssl_keyfile": str(self.key_file),
        }


@dataclass
class RedisProcess:
    """One ``redis-server`` (or sentinel) on its own port and folder; killed and restarted on
    the same port at will. With ``tls`` that port speaks TLS alone; with ``password`` a server
    asks for it, and a data server gives it to its primary too."""

    directory: Path
    extra_args: list[str] = field(default_factory=list)
    sentinel: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tls: ServerTls | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        # Absolute: redis-server changes into --dir before it opens its log file.
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / ("sentinel.conf" if self.sentinel else "redis.conf")
        # A sentinel rewrites its config file, so it must be a file of its own.
        config.touch()
        args = [binary, str(config), *(["--sentinel"] if self.sentinel else [])]
        args += ["--port", str(self.port)] if self.tls is None else self.tls.server_args(self.port)
        args += ["--bind", HOST, "--dir", str(self.directory)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        if not self.sentinel:
            args += ["--save", "", "--appendonly", "no"]
            if self.password is not None:
                # A replica, or a primary that a failover turns into one, needs it.
                args += ["--masterauth", self.password]
        args += ["--logfile", str(self.directory / "redis.log"), *self.extra_args]
        # What it prints before its log is open (a bad option, say) lands here.
        with (self.directory / "redis.out").open("wb") as output:
            self.process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
        self.wait_until(lambda client: bool(client.ping()), "answers PING")

    def client(self) -> Redis:
        tls = {} if self.tls is None else self.tls.client_options()
        return Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=2,
            decode_responses=True,
            **tls,
        )

    def wait_until(self, ready: Callable[[Redis], bool], what: str) -> None:
        with self.client() as client:
            if not poll(client, ready, self._still_running):
                raise RuntimeError(f"redis on {self.address} never {what}")

    def _still_running(self) -> None:
        """Raises, with the end of its log, once the server has exited: waiting on would
        only end in the timeout."""
        if self.process is None or self.process.poll() is None:
            return
        tail = "".join(
            path.read_text(errors="replace")[-1000:]
            for path in (self.directory / "redis.out", self.directory / "redis.log")
            if path.exists()
        )
        raise RuntimeError(f"redis on {self.address} exited ({self.process.returncode}): {tail}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def poll(
    client: Redis,
    ready: Callable[[Redis], bool],
    alive: Callable[[], None] = lambda: None,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> bool:
    """Whether ``ready`` holds within ``timeout_s``, asked every 50 ms; a server that cannot
    be reached yet is not ready. ``alive`` raises to give up early."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        try:
            if ready(client):
                return True
        except (RedisError, OSError):
            pass
        time.sleep(0.05)
    return False


@dataclass
class LocalRedisCluster:
    """``primaries`` primaries, each with ``replicas`` replicas: three with one each unless
    told. ``nodes`` is what ``REDIS_CLUSTER_NODES`` takes. With ``tls`` every node speaks TLS
    alone, to clients and on the cluster bus; ``password`` is every node's."""

    directory: Path
    primaries: int = 3
    replicas: int = 1
    tls: ServerTls | None = None
    password: str | None = None
    servers: list[RedisProcess] = field(default_factory=list)

    @property
    def nodes(self) -> str:
        return ",".join(server.address for server in self.servers)

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """The nodes, as ``ConnectionSettings.cluster_nodes`` takes them."""
        return tuple((HOST, server.port) for server in self.servers)

    def start(self) -> None:
        # redis-cli refuses to create a cluster of fewer than 3 primaries; one is made by hand.
        if self.primaries < 3 and (self.primaries, self.replicas) != (1, 0):
            raise ValueError("a cluster has 3 primaries or more, or 1 primary alone")
        cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            str(CLUSTER_NODE_TIMEOUT_MS),
            # A test kills a primary on purpose; the other slots keep serving meanwhile.
            "--cluster-require-full-coverage",
            "no",
            # A node alone learns its address from no peer, and would tell clients "".
            "--cluster-announce-ip",
            HOST,
            *(["--tls-cluster", "yes"] if self.tls is not None else []),
        ]
        for index in range(self.primaries * (1 + self.replicas)):
            # The bus port is given, not left at port + 10000, which may be taken or past 65535.
            bus = ["--cluster-port", str(free_port())]
            server = RedisProcess(
                self.directory / f"node-{index}",
                extra_args=cluster_args + bus,
                tls=self.tls,
                password=self.password,
            )
            self.servers.append(server)
            server.start()
        if self.primaries == 1:
            with self.servers[0].client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, REDIS_CLUSTER_HASH_SLOTS - 1)
        else:
            subprocess.run(
                [
                    "redis-cli",
                    *self._cli_options(),
                    "--cluster",
                    "create",
                    *(server.address for server in self.servers),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
            )
        for server in self.servers:
            server.wait_until(_cluster_is_ok, "saw the cluster ok")
            if self.replicas:
                # Until gossip has told every node of every replica, clients would see none.
                server.wait_until(self._every_shard_has_its_replicas, "saw every shard's replica")

    def _every_shard_has_its_replicas(self, client: Redis) -> bool:
        # CLUSTER SLOTS: per slot range its start, its end, its primary and then its replicas.
        shards = client.cluster("SLOTS")
        return len(shards) == self.primaries and all(
            len(shard) == 3 + self.replicas for shard in shards
        )

    def _cli_options(self) -> list[str]:
        options = [] if self.password is None else ["--no-auth-warning", "-a", self.password]
        if self.tls is not None:
            options += ["--tls", "--cacert", str(self.tls.ca_file)]
            options += ["--cert", str(self.tls.cert_file), "--key", str(self.tls.key_file)]
        return options

    def stop(self) -> None:
        for server in self.servers:
            server.kill()


@dataclass
class LocalSentinelGroup:
    """A primary, its replica and three sentinels watching ``SENTINEL_SERVICE``.
    ``sentinels`` is what ``REDIS_SENTINELS`` takes. With ``tls`` every server and sentinel
    speaks TLS alone; ``password`` is the primary's and the replica's (the sentinels have
    none)."""

    directory: Path
    tls: ServerTls | None = None
    password: str | None = None
    primary: RedisProcess | None = None
    replica: RedisProcess | None = None
    watchers: list[RedisProcess] = field(default_factory=list)

    @property
    def sentinels(self) -> str:
        return ",".join(sentinel.address for sentinel in self.watchers)

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """The sentinels, as ``SentinelSettings`` takes them."""
        return tuple((HOST, sentinel.port) for sentinel in self.watchers)

    def start(self) -> None:
        self.primary = self._data_server("primary")
        self.primary.start()
        self.replica = self._data_server("replica", "--replicaof", HOST, str(self.primary.port))
        self.replica.start()
        self.replica.wait_until(_replica_is_synced, "synced with its primary")
        options: list[tuple[str, str | int]] = [
            ("down-after-milliseconds", SENTINEL_DOWN_AFTER_MS),
            ("failover-timeout", SENTINEL_FAILOVER_TIMEOUT_MS),
        ]
        if self.password is not None:
            options.append(("auth-pass", self.password))
        for index in range(3):
            sentinel = RedisProcess(
                self.directory / f"sentinel-{index}", sentinel=True, tls=self.tls
            )
            sentinel.start()
            with sentinel.client() as client:
                client.sentinel_monitor(SENTINEL_SERVICE, HOST, self.primary.port, 2)
                for option, value in options:
                    client.sentinel_set(SENTINEL_SERVICE, option, value)
            self.watchers.append(sentinel)
        for sentinel in self.watchers:
            sentinel.wait_until(_sees_the_others, "saw the other sentinels")

    def _data_server(self, name: str, *args: str) -> RedisProcess:
        return RedisProcess(
            self.directory / name, extra_args=list(args), tls=self.tls, password=self.password
        )

    def stop(self) -> None:
        for server in [*self.watchers, self.replica, self.primary]:
            if server is not None:
                server.kill()


def _cluster_is_ok(client: Redis) -> bool:
    return bool(client.cluster("INFO")["cluster_state"] == "ok")


def _replica_is_synced(client: Redis) -> bool:
    return client.info("replication").get("master_link_status") == "up"


def _sees_the_others(client: Redis) -> bool:
    primary = client.sentinel_master(SENTINEL_SERVICE)
    assert isinstance(primary, dict)  # the reply's fields, parsed; a bool only when asked for
    return int(primary["num-other-sentinels"]) >= 2 and int(primary["num-slaves"]) >= 1


@contextmanager
def running(topology: LocalRedisCluster | LocalSentinelGroup) -> Iterator[None]:
    try:
        topology.start()
        yield
    finally:
        topology.stop()


def settings_of(topology: LocalRedisCluster | LocalSentinelGroup) -> str:
    """The environment that points chatstream at ``topology``."""
    if isinstance(topology, LocalRedisCluster):
        return f"REDIS_CLUSTER_NODES={topology.nodes}"
    return f"REDIS_SENTINELS={topology.sentinels} REDIS_SENTINEL_SERVICE={SENTINEL_SERVICE}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m launcher.local_redis")
    parser.add_argument("topology", choices=("cluster", "sentinel"))
    parser.add_argument("--dir", type=Path, help="a folder for the servers (default: a new one)")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix=f"chatstream-redis-{args.topology}-"))
    topology: LocalRedisCluster | LocalSentinelGroup = (
        LocalRedisCluster(directory)
        if args.topology == "cluster"
        else LocalSentinelGroup(directory)
    )
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with running(topology):
        print(f"{args.topology} up in {directory}: {settings_of(topology)}", flush=True)
        while not stopped:
            time.sleep(0.2)


if __name__ == "__main__":
    main()
