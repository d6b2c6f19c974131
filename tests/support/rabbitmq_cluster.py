"""A private three-node RabbitMQ cluster for fault tests: plain ``rabbitmq-server`` processes
on free ports, each in its own folder under one temporary directory, joined with
``rabbitmqctl``. The machine's own RabbitMQ (5672) is never touched: the nodes have names,
ports, data, cookie and configuration of their own. Only epmd, Erlang's name registry on 4369,
is shared with it, which is what it is for.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from launcher.ports import HOST, free_port
from shared.amqp_nodes import join_nodes

# Debian's own scripts: the wrappers in /usr/sbin would switch to the rabbitmq user, and with it
# to that user's home and Erlang cookie instead of the cluster's.
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
# Bounds on a hang, not on speed: one node boots in about 8 s on this machine's 2 cores.
BOOT_TIMEOUT_S = 120.0
CTL_TIMEOUT_S = 60.0


@dataclass
class RabbitNode:
    name: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}/"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the node: its shell, the Erlang VM and their helpers, all of its session."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class LocalRabbitCluster:
    size: int = 3
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cs-rabbit-")))
    nodes: list[RabbitNode] = field(default_factory=list)

    @property
    def amqp_url(self) -> str:
        """``AMQP_URL`` for every node, in order."""
        return join_nodes(tuple(node.url for node in self.nodes))

    def start(self) -> None:
        """Boot every node at once, then join the others to the first."""
        (self.directory / ".erlang.cookie").write_text(secrets.token_hex(16))
        (self.directory / ".erlang.cookie").chmod(0o600)
        # Unique names: epmd is shared with the machine's RabbitMQ and other tests' clusters.
        token = secrets.token_hex(4)
        for index in range(1, self.size + 1):
            node = RabbitNode(
                f"chatstream-{token}-{index}@localhost",
                free_port(),
                self.directory / f"node{index}",
            )
            node.process = self._boot(node)
            self.nodes.append(node)
        for node in self.nodes:
            self._wait_booted(node)
        first, *others = self.nodes
        for node in others:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        self.ctl(first, "await_online_nodes", str(self.size))

    def _boot(self, node: RabbitNode) -> subprocess.Popen[bytes]:
        node.directory.mkdir(parents=True)
        config = node.directory / "rabbitmq.conf"
        # Its own listener, never the machine's (/etc/rabbitmq/rabbitmq.conf names 5672); a
        # nearly full /tmp must not block publishers through the disk alarm.
        config.write_text(f"listeners.tcp.1 = {HOST}:{node.port}\ndisk_free_limit.absolute = 1MB\n")
        plugins = node.directory / "enabled_plugins"
        plugins.write_text("[].\n")  # none: no management plugin, a faster boot
        env_file = node.directory / "rabbitmq-env.conf"
        env_file.write_text("")  # instead of /etc/rabbitmq/rabbitmq-env.conf and its NODENAME
        env = {
            **self._cli_env(),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_CONF_ENV_FILE": str(env_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_MNESIA_BASE": str(node.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.directory / "log"),
            # Erlang distribution on loopback only.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        with (node.directory / "stdout.log").open("wb") as log:
            # A session of its own, so that kill() reaches every process of the node.
            return subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _cli_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # The cluster's Erlang cookie is in HOME.
            "HOME": str(self.directory),
            # The CLI is an Erlang node too; a free port of its own, not the shared default range.
            "RABBITMQ_CTL_DIST_PORT_MIN": str(port := free_port()),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(port),
        }

    def _wait_booted(self, node: RabbitNode) -> None:
        """Until the node says it has booted. ``await_startup`` fails at once while the node is
        not yet registered with epmd, so it is asked again until then."""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if not node.alive:
                raise RuntimeError(f"{node.name} exited: {self.log_tail(node)}")
            try:
                self.ctl(node, "await_startup")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def ctl(self, node: RabbitNode, *args: str) -> str:
        """``rabbitmqctl`` against ``node``; its output."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node.name, "-q", *args],
            env=self._cli_env(),
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {node.name}: {done.stderr}\n"
                f"the node's output: {self.log_tail(node)}"
            )
        return done.stdout

    def queue_members(self, queue: str) -> tuple[RabbitNode, list[RabbitNode]]:
        """The leader of quorum queue ``queue`` and its members, as a live node sees them."""
        asked = next(node for node in self.nodes if node.alive)
        rows = json.loads(
            self.ctl(asked, "list_queues", "name", "leader", "members", "--formatter", "json")
        )
        by_name = {node.name: node for node in self.nodes}
        row = next(row for row in rows if row["name"] == queue)
        return by_name[row["leader"]], [by_name[member] for member in row["members"]]

    def messages(self, queue: str) -> int:
        """Messages in ``queue``, ready and unacknowledged."""
        asked = next(node for node in self.nodes if node.alive)
        rows = json.loads(self.ctl(asked, "list_queues", "name", "messages", "--formatter", "json"))
        return int(next(row for row in rows if row["name"] == queue)["messages"])

    def log_tail(self, node: RabbitNode) -> str:
        path = node.directory / "stdout.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Kill every node (nothing of theirs is kept) and delete their folder."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
