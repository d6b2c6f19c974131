"""The compose cluster profile: six Redis nodes and the one-shot redis-cluster-init that makes
them one cluster, only under `--profile cluster`; the gateways and workers pointed at the nodes
by REDIS_TOPOLOGY=cluster, and started once the cluster serves every slot. The structure is read
from docker-compose.yml (no Docker engine runs here); the scripts the containers run are run on
real redis-server processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.cluster import ClusterNode, RedisCluster

from launcher.ports import HOST, free_port
from shared.settings import ConnectionSettings
from tests.ops.test_compose_hardening import compose, one_shot_services, secret_names, services
from tests.ops.test_compose_sentinel import Server, app_environment, read_env_file

ROOT = Path(__file__).resolve().parents[2]
REDIS_DEPLOY = ROOT / "deploy/redis"
NODES = tuple(f"redis-node-{i}" for i in range(1, 7))
CLUSTER_GROUP = {*NODES, "redis-cluster-init"}
NODE_PORT = 6379
SLOTS = 16384
INIT_TIMEOUT_S = 60.0
# The script mounts of every node, each read-only.
NODE_MOUNTS = {
    "./deploy/redis/redis.conf:/usr/local/etc/redis/redis.conf:ro",
    "./deploy/redis/cluster.conf:/usr/local/etc/redis/cluster.conf:ro",
    "./deploy/redis/with-password.sh:/usr/local/etc/redis/with-password.sh:ro",
    "./deploy/redis/cluster-node.sh:/usr/local/etc/redis/cluster-node.sh:ro",
}


def test_the_cluster_runs_only_under_its_profile() -> None:
    every = services()
    profiled = {name for name, service in every.items() if "cluster" in service.get("profiles", [])}
    assert profiled == CLUSTER_GROUP
    for name in CLUSTER_GROUP:
        assert every[name]["profiles"] == ["cluster"], name


def test_with_the_cluster_topology_the_apps_reach_the_six_nodes() -> None:
    for name in ("gateway", "worker"):
        environment = app_environment(name, REDIS_TOPOLOGY="cluster")
        assert "REDIS_URL" not in environment, name
        assert not {k for k in environment if k.startswith("REDIS_SENTINEL")}, name
        nodes = environment["REDIS_CLUSTER_NODES"].split(",")
        assert nodes == [f"{node}:{NODE_PORT}" for node in NODES], name
        # The nodes' one password, from a file the service is given.
        path = environment["REDIS_PASSWORD_FILE"]
        assert path.removeprefix("/run/secrets/") in secret_names(services()[name])
        assert "redis_password" in secret_names(services()[name])


def test_chatstream_settings_take_the_cluster_env_file(tmp_path: Path) -> None:
    password_file = tmp_path / "redis_password"
    password_file.write_text("pw\n")
    environment = app_environment("gateway", REDIS_TOPOLOGY="cluster")
    files = {k: str(password_file) for k in environment if k.endswith("_FILE")}
    settings = ConnectionSettings.redis_from_env({**environment, **files})
    assert settings.redis_url is None and settings.sentinel is None
    assert settings.cluster_nodes == tuple((node, NODE_PORT) for node in NODES)
    assert settings.redis_password == "pw"


def test_the_apps_wait_for_the_cluster_only_where_its_profile_runs() -> None:
    for name in ("gateway", "worker"):
        dependency = services()[name]["depends_on"]["redis-cluster-init"]
        # Without the profile the service does not exist: a required dependency on it would
        # make compose refuse the whole project.
        assert dependency == {"condition": "service_completed_successfully", "required": False}
    init = services()["redis-cluster-init"]
    assert "redis-cluster-init" in one_shot_services()
    assert init.get("restart", "no") == "no" and "healthcheck" not in init


def test_the_nodes_are_redis_with_the_cluster_config() -> None:
    every = services()
    redis = every["redis"]
    data_volumes = set()
    for name in NODES:
        node = every[name]
        # The same server as `redis`, its password from the same secret through the same script.
        for key in ("image", "entrypoint", "deploy", "secrets", "tmpfs", "restart", "logging"):
            assert node[key] == redis[key], (name, key)
        assert node["command"] == [
            "/bin/sh",
            "/usr/local/etc/redis/cluster-node.sh",
            *redis["command"],
            "--include",
            "/usr/local/etc/redis/cluster.conf",
        ], name
        # The name it announces to clients and to the other nodes is its service's.
        assert node["environment"] == {"REDIS_ANNOUNCE_HOST": name}
        mounts = set(node["volumes"]) - {f"{name}-data:/data"}
        assert mounts == NODE_MOUNTS, name
        data_volumes.add(f"{name}-data")
        check = node["healthcheck"]["test"]
        assert check[0] == "CMD-SHELL" and "/run/secrets/redis_password" in check[1]
        assert "cluster info | grep -q '^cluster_state:ok'" in check[1]
        assert secret_names(node) == {"redis_password"}
    # A volume of its own for each node: nodes.conf names the node and its peers.
    assert data_volumes <= set(compose()["volumes"]) and len(data_volumes) == len(NODES)
    for mount in NODE_MOUNTS:
        assert (ROOT / mount.split(":")[0]).is_file(), mount
    conf = (REDIS_DEPLOY / "cluster.conf").read_text()
    for line in (
        "cluster-enabled yes",
        "cluster-config-file nodes.conf",
        "cluster-preferred-endpoint-type hostname",
    ):
        assert re.search(rf"^{line}$", conf, re.M), line


def test_the_init_makes_the_nodes_the_apps_reach_one_cluster() -> None:
    init = services()["redis-cluster-init"]
    assert init["image"] == services()["redis"]["image"]
    assert init["entrypoint"] == ["/bin/sh", "/usr/local/etc/redis/cluster-init.sh"]
    assert init["volumes"] == [
        "./deploy/redis/cluster-init.sh:/usr/local/etc/redis/cluster-init.sh:ro"
    ]
    assert secret_names(init) == {"redis_password"}
    # The nodes it creates the cluster from are the ones the apps are told of, in order.
    environment = init["environment"]
    apps = read_env_file(REDIS_DEPLOY / "cluster.env")["REDIS_CLUSTER_NODES"]
    assert environment["CLUSTER_NODES"].split() == apps.split(",")
    assert environment["CLUSTER_REPLICAS"] == "1"
    # It waits for nothing but the nodes' start: they are healthy only once it has run.
    assert init["depends_on"] == {name: {"condition": "service_started"} for name in NODES}


# --- cluster-node.sh on its own -------------------------------------------------------------


def run_cluster_node(tmp: Path, nodes_conf: str | None) -> tuple[str | None, list[str]]:
    """nodes.conf after cluster-node.sh ran, and the arguments it ran its command with."""
    conf, args = tmp / "nodes.conf", tmp / "args"
    if nodes_conf is not None:
        conf.write_text(nodes_conf)
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_ANNOUNCE_HOST": "redis-node-2",
        "CLUSTER_CONFIG_FILE": str(conf),
        "CLUSTER_RESOLVE_WAIT_S": "0",
    }
    record = ["sh", "-c", f'printf "%s\\n" "$@" >{args}', "record", "redis-server", "x.conf"]
    subprocess.run(
        ["sh", str(REDIS_DEPLOY / "cluster-node.sh"), *record],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    return (
        conf.read_text() if conf.exists() else None,
        args.read_text().splitlines(),
    )


def test_cluster_node_sets_each_address_kept_from_its_node_s_name_now(tmp_path: Path) -> None:
    before = (
        # Redis 7.0's form, then 7.2's with its named fields after the name.
        "aaa 10.0.0.9:6379@16379,localhost myself,master - 0 0 1 connected 0-5460\n"
        "bbb 10.0.0.8:6379@16379,localhost,tls-port=0,shard-id=s1 slave aaa 0 1 1 connected\n"
        "ccc fd00::8:6379@16379,localhost master - 0 1 2 connected 5461-16383\n"
        # Not resolvable (its container is not up): left for gossip to correct.
        "ddd 10.0.0.7:6379@16379,no-such-node.invalid slave ccc 0 1 2 connected\n"
        # No name announced: nothing to resolve.
        "eee 10.0.0.6:6379@16379 slave ccc 0 1 2 connected\n"
        "fff 10.0.0.5:6379@16379,,shard-id=s2 slave ccc 0 1 2 connected\n"
        "vars currentEpoch 2 lastVoteEpoch 0\n"
    )
    after, args = run_cluster_node(tmp_path, before)
    assert after == (
        "aaa 127.0.0.1:6379@16379,localhost myself,master - 0 0 1 connected 0-5460\n"
        "bbb 127.0.0.1:6379@16379,localhost,tls-port=0,shard-id=s1 slave aaa 0 1 1 connected\n"
        "ccc 127.0.0.1:6379@16379,localhost master - 0 1 2 connected 5461-16383\n"
        "ddd 10.0.0.7:6379@16379,no-such-node.invalid slave ccc 0 1 2 connected\n"
        "eee 10.0.0.6:6379@16379 slave ccc 0 1 2 connected\n"
        "fff 10.0.0.5:6379@16379,,shard-id=s2 slave ccc 0 1 2 connected\n"
        "vars currentEpoch 2 lastVoteEpoch 0\n"
    )
    assert args == ["redis-server", "x.conf", "--cluster-announce-hostname", "redis-node-2"]
    # A first start has no nodes.conf, and gets none from the script.
    (tmp_path / "nodes.conf").unlink()
    after, args = run_cluster_node(tmp_path, None)
    assert after is None and args[-1] == "redis-node-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args"]


# --- the containers' scripts, on real redis-server processes -------------------------------


@dataclass
class LocalCluster:
    """Six nodes started as their containers start them, and cluster-init.sh run as its
    container runs it. Every node announces ``localhost``, the one name that reaches all of
    them here."""

    nodes: list[Server]
    password: str
    env: dict[str, str]

    @property
    def addresses(self) -> list[str]:
        return [f"localhost:{node.port}" for node in self.nodes]

    def init(self) -> subprocess.CompletedProcess[str]:
        env = self.env | {"CLUSTER_NODES": " ".join(self.addresses), "CLUSTER_WAIT_S": "30"}
        return subprocess.run(
            ["sh", str(REDIS_DEPLOY / "cluster-init.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=INIT_TIMEOUT_S,
            check=False,
        )

    def view(self, node: Server) -> dict[str, tuple[str, str, tuple[tuple[str, ...], ...]]]:
        """Every node as ``node`` sees it: its role, its primary, its slots."""
        with node.client(self.password) as client:
            table: dict[str, dict[str, Any]] = client.cluster("NODES")
        return {
            entry["node_id"]: (
                "primary" if "master" in entry["flags"] else "replica",
                entry["master_id"],
                tuple(tuple(span) for span in entry["slots"]),
            )
            for entry in table.values()
        }

    def epochs(self) -> list[tuple[str, str]]:
        epochs = []
        for node in self.nodes:
            with node.client(self.password) as client:
                info = client.cluster("INFO")
            epochs.append((info["cluster_current_epoch"], info["cluster_my_epoch"]))
        return epochs


def cluster_node(tmp: Path, name: str, env: dict[str, str]) -> Server:
    port, bus, directory = free_port(), free_port(), tmp / name
    directory.mkdir()
    include = directory / "run/password.conf"
    argv = ["sh", str(REDIS_DEPLOY / "with-password.sh")]
    argv += ["sh", str(REDIS_DEPLOY / "cluster-node.sh")]
    argv += ["redis-server", str(REDIS_DEPLOY / "redis.conf"), "--include", str(include)]
    argv += ["--include", str(REDIS_DEPLOY / "cluster.conf")]
    # The bus port is given, not left at port + 10000, which may be taken or past 65535.
    argv += ["--port", str(port), "--cluster-port", str(bus), "--bind", HOST]
    argv += ["--dir", str(directory), "--daemonize", "no"]
    env = env | {
        "REDIS_PASSWORD_INCLUDE": str(include),
        "REDIS_ANNOUNCE_HOST": "localhost",
        "CLUSTER_CONFIG_FILE": str(directory / "nodes.conf"),
        "CLUSTER_RESOLVE_WAIT_S": "5",
    }
    return Server(name, port, argv, env, directory / "log")


@contextmanager
def local_cluster(tmp: Path, password: str) -> Iterator[LocalCluster]:
    password_file = tmp / "redis_password"
    password_file.write_text(password + "\n")
    env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD_FILE": str(password_file)}
    nodes = [cluster_node(tmp, name, env) for name in NODES]
    with ExitStack() as stack:
        for node in nodes:
            stack.callback(node.stop)
            node.start()
        for node in nodes:
            node.wait_until(password, lambda c: bool(c.ping()), "answered")
        yield LocalCluster(nodes, password, env)


def serves_every_slot_with_a_replica_each(client: Redis) -> bool:
    """What the node sees: cluster_state:ok (the compose healthcheck), a link up to every
    other node, and three primaries that share every slot, each followed by one replica."""
    if client.cluster("INFO")["cluster_state"] != "ok":
        return False
    table: dict[str, dict[str, Any]] = client.cluster("NODES")
    entries = list(table.values())
    if len(entries) != len(NODES) or not all(e["connected"] for e in entries):
        return False
    if any("fail" in e["flags"] for e in entries):
        return False
    primaries = {e["node_id"] for e in entries if "master" in e["flags"]}
    followed = Counter(e["master_id"] for e in entries if "slave" in e["flags"])
    slots = sum(int(end) - int(start) + 1 for e in entries for start, end in e["slots"])
    return len(primaries) == 3 and followed == dict.fromkeys(primaries, 1) and slots == SLOTS


def wait_for_the_cluster(cluster: LocalCluster, what: str) -> None:
    for node in cluster.nodes:
        node.wait_until(cluster.password, serves_every_slot_with_a_replica_each, what)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_the_scripts_make_one_cluster_once_and_keep_it_across_new_addresses(
    tmp_path: Path,
) -> None:
    password = "s3cret:@/word"
    with local_cluster(tmp_path, password) as cluster:
        first = await asyncio.to_thread(cluster.init)
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.endswith("cluster ok on 6 nodes, created now\n")
        await asyncio.to_thread(wait_for_the_cluster, cluster, "served every slot")
        views = [cluster.view(node) for node in cluster.nodes]
        assert all(view == views[0] for view in views)
        # Clients are sent to nodes by the name they announce, which compose's DNS resolves.
        with cluster.nodes[0].client(password) as client:
            shards = client.cluster("SLOTS")
        # Per slot range: its first and last slot, then its primary and replicas, host first.
        assert {str(node[0]) for shard in shards for node in shard[2:]} == {"localhost"}
        # The password is on no command line.
        for node in cluster.nodes:
            assert node.process is not None
            cmdline = await asyncio.to_thread(Path(f"/proc/{node.process.pid}/cmdline").read_bytes)
            assert b"redis-server" in cmdline and password.encode() not in cmdline

        # Compose runs it at every `up`: a second run finds the cluster and changes nothing.
        epochs = cluster.epochs()
        again = await asyncio.to_thread(cluster.init)
        assert again.returncode == 0, again.stdout + again.stderr
        assert (again.stdout, again.stderr) == ("cluster ok on 6 nodes\n", "")
        assert [cluster.view(node) for node in cluster.nodes] == views
        assert cluster.epochs() == epochs

        # Recreated containers get new addresses: nodes.conf then names none that answers.
        for node in cluster.nodes:
            node.stop()
        for index, node in enumerate(cluster.nodes):
            conf = node.log.parent / "nodes.conf"
            # Every address, its own included, since a container's own address changes too.
            stale = re.sub(
                r"^(\w{40}) 127\.0\.0\.1:",
                rf"\g<1> 10.255.0.{index + 1}:",
                conf.read_text(),
                flags=re.M,
            )
            assert stale.count("10.255.0.") == len(NODES)
            conf.write_text(stale)
        for node in cluster.nodes:
            node.start()
        await asyncio.to_thread(wait_for_the_cluster, cluster, "came back on new addresses")
        assert [cluster.view(node) for node in cluster.nodes] == views
        third = await asyncio.to_thread(cluster.init)
        assert (third.returncode, third.stdout) == (0, "cluster ok on 6 nodes\n")

        # Any node leads a cluster client to every primary, by the names the nodes announce.
        client = RedisCluster(
            startup_nodes=[ClusterNode("localhost", cluster.nodes[-1].port)],
            password=password,
            decode_responses=True,
            socket_timeout=2,
        )
        try:
            primaries = client.get_primaries()
            assert len(primaries) == 3
            probes = (f"chatstream:probe:{i}" for i in itertools.count())
            for primary in primaries:
                key = next(k for k in probes if client.get_node_from_key(k) == primary)
                assert client.set(key, primary.name) and client.get(key) == primary.name
        finally:
            client.close()
