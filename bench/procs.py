"""Starting and stopping the processes a benchmark measures: a gateway and its workers, each on
the benchmark's own namespace, plus the load generators, which speak JSON lines on stdio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.purge import purge_namespace as purge
from launcher.ports import free_port
from shared.names import Names

# The servers: BENCH_* from `make bench`, else TEST_* from `make test` (the smoke test).
REDIS_URL = os.environ.get(
    "BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
)
AMQP_URL = os.environ.get(
    "BENCH_AMQP_URL", os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
)
# Every namespace the bench creates starts with this (the smoke test passes its own).
NAMESPACE_PREFIX = os.environ.get("BENCH_NAMESPACE_PREFIX", "bench")
# A gateway imports for 3-5 s on this machine; several processes starting at once on two
# busy cores take much longer.
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# The bench's users: a few keys, so per-user limits (when they exist) are set high instead.
USERS = 8


def api_keys() -> dict[str, str]:
    return {f"bench-key-{i}": f"bench-user-{i}" for i in range(USERS)}


def new_namespace(label: str) -> str:
    return f"{NAMESPACE_PREFIX}.{label}.{uuid.uuid4().hex[:10]}"


@dataclass
class Stack:
    """One gateway process and ``workers`` worker processes on their own namespace, on the
    bench's Redis or on the cluster that ``env``'s REDIS_CLUSTER_NODES names."""

    label: str
    log_dir: Path
    workers: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    namespace: str = ""
    port: int = 0
    gateway: asyncio.subprocess.Process | None = None
    worker_procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def names(self) -> Names:
        return Names(self.namespace)

    def base_env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "REDIS_URL": REDIS_URL,
            "AMQP_URL": AMQP_URL,
            "CHATSTREAM_NAMESPACE": self.namespace,
            "AUTH_API_KEYS": ",".join(f"{k}={u}" for k, u in api_keys().items()),
            "LOG_FORMAT": "json",
            # The per-user limits guard a real deployment; the bench is a handful of users
            # holding thousands of streams, so they are lifted.
            "RATE_LIMIT_PER_MINUTE": "100000000",
            "MAX_STREAMS_PER_USER": "100000000",
            **self.env,
        }
        if "REDIS_CLUSTER_NODES" in self.env:
            # The settings refuse a Redis URL beside the cluster's nodes.
            del env["REDIS_URL"]
        return env

    async def start(self) -> None:
        self.namespace = new_namespace(self.label)
        self.port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**self.base_env(), "GATEWAY_PORT": str(self.port)}
        self.gateway = await spawn([sys.executable, "-m", "gateway"], env, self._log("gateway"))
        for i in range(self.workers):
            worker_env = {**self.base_env(), "WORKER_ID": f"bench-worker-{i}"}
            self.worker_procs.append(
                await spawn([sys.executable, "-m", "worker"], worker_env, self._log(f"worker{i}"))
            )
        try:
            await self._wait_ready()
        except BaseException:
            # The caller only stops a stack that started: leave no process behind.
            await self.stop()
            raise

    def pids(self) -> dict[str, list[int]]:
        assert self.gateway is not None
        return {"gateway": [self.gateway.pid], "worker": [p.pid for p in self.worker_procs]}

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{self.label}-{name}.log"

    async def _wait_ready(self) -> None:
        assert self.gateway is not None
        await wait_ready(self.url, self.gateway, self._log("gateway"))

    async def stop(self) -> None:
        processes = [p for p in [*self.worker_procs, self.gateway] if p is not None]
        await stop_all(processes)
        if self.namespace:
            await purge_namespace(self.names)


async def wait_ready(url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    """Wait until the server ``process`` at ``url`` answers ``/readyz`` with 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{url} exited; see {log_path}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {READY_TIMEOUT_S}s")


@dataclass
class HelperServer:
    """A small server of the benchmark's own in a process of its own, ``python -m MODULE PORT
    ARGS...``, ready once it answers ``/readyz``: ``bench.bare_sse`` (the limit the gateway's
    idle streams are measured against), ``bench.otlp_sink`` (where traced services export)."""

    module: str
    log_path: Path
    args: tuple[str, ...] = ()
    port: int = 0
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", self.module, str(self.port), *self.args]
        self.process = await spawn(command, os.environ, self.log_path)
        try:
            await wait_ready(self.url, self.process, self.log_path)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.process is not None:
            await stop_all([self.process])


def py_spy() -> list[str]:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("py-spy is not installed: `make bench` installs the bench group")
    return [found]


async def profile(pid: int, duration_s: float, output: Path) -> asyncio.subprocess.Process:
    """Record ``pid`` with py-spy for ``duration_s`` (speedscope JSON at ``output``)."""
    return await spawn(
        [
            *py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(duration_s))),
            "--format",
            "speedscope",
            "--nonblocking",
            "--output",
            str(output),
        ],
        os.environ,
        output.with_suffix(".log"),
    )


async def spawn(
    command: list[str], env: Mapping[str, str], log_path: Path
) -> asyncio.subprocess.Process:
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *command, env=dict(env), stdout=log, stderr=asyncio.subprocess.STDOUT
        )


async def stop_all(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def purge_namespace(names: Names) -> None:
    """Delete every Redis key and AMQP entity the benchmark's namespace created."""
    await purge(names, REDIS_URL, AMQP_URL)


class Tool:
    """A load generator in its own process: it gets its spec as JSON in argv, prints JSON lines
    (progress like ``{"ready": ...}``, then its result), and stops when stdin says ``stop``."""

    def __init__(self, module: str, spec: Mapping[str, Any], log_path: Path) -> None:
        self._module = module
        self._spec = spec
        self._log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self._module,
                json.dumps(self._spec),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                # Big results (a latency sample per event) come back on one line.
                limit=64 * 1024 * 1024,
            )

    async def read(self, timeout_s: float) -> dict[str, Any]:
        """The tool's next JSON line."""
        assert self.process is not None and self.process.stdout is not None
        async with asyncio.timeout(timeout_s):
            line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            raise RuntimeError(
                f"{self._module} exited ({self.process.returncode}); see {self._log_path}"
            )
        value = json.loads(line)
        assert isinstance(value, dict)
        return value

    def tell(self, command: str) -> None:
        """Send a command line; a tool that already finished by itself needs none."""
        assert self.process is not None and self.process.stdin is not None
        if self.process.returncode is not None or self.process.stdin.is_closing():
            return
        with contextlib.suppress(RuntimeError, ConnectionError):
            self.process.stdin.write(command.encode() + b"\n")

    async def close(self) -> None:
        if self.process is not None:
            await stop_all([self.process])
