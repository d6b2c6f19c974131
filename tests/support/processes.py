"""Starting real gateway and worker processes for tests, each logging JSON to its own file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from launcher.ports import free_port
from shared.settings import REDIS_TLS_FILES, ConnectionSettings
from tests.conftest import API_KEY, OTHER_API_KEY

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def connection_env(connections: ConnectionSettings) -> dict[str, str]:
    """The environment that gives a process ``connections``."""
    env = {
        "REDIS_URL": connections.redis_url or "",
        "AMQP_URL": connections.amqp_url or "",
        "CHATSTREAM_NAMESPACE": connections.namespace,
    }
    sentinel, tls = connections.sentinel, connections.redis_tls
    if connections.cluster_nodes:
        env["REDIS_CLUSTER_NODES"] = ",".join(f"{h}:{p}" for h, p in connections.cluster_nodes)
    if sentinel is not None:
        env["REDIS_SENTINELS"] = ",".join(f"{h}:{p}" for h, p in sentinel.sentinels)
        env["REDIS_SENTINEL_SERVICE"] = sentinel.service
        if sentinel.password is not None:
            env["REDIS_SENTINEL_PASSWORD"] = sentinel.password
    # A password the URL holds already must not be given twice.
    if connections.redis_password and urlsplit(connections.redis_url or "").password is None:
        env["REDIS_PASSWORD"] = connections.redis_password
    if tls is not None:
        # One Redis's TLS is its URL's scheme; the sentinels' and a cluster's is the switch.
        if sentinel is not None or connections.cluster_nodes:
            env["REDIS_TLS"] = "true"
        files = zip(REDIS_TLS_FILES, (tls.ca_file, tls.cert_file, tls.key_file), strict=True)
        env |= {name: path for name, path in files if path is not None}
    return env


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line.get("event") == name]

    async def wait_events(
        self, name: str, count: int, timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """The process's log lines of event ``name`` once there are ``count`` of them (log
        lines trail the responses a little)."""
        for _ in range(int(timeout_s / 0.05)):
            found = self.events(name)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        return self.events(name)

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    async def wait_exit(self, timeout_s: float) -> int:
        for _ in range(int(timeout_s / 0.05)):
            code = self.process.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not exit within {timeout_s}s")


@dataclass
class ProcessGroup:
    """Every process a test started; all are stopped when the test ends."""

    connections: ConnectionSettings
    log_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    started: list[ServiceProcess] = field(default_factory=list)

    def _env(self, overrides: dict[str, str]) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST", "COV_"))
        }
        env.update(connection_env(self.connections))
        env.update(
            {
                "LOG_FORMAT": "json",
                "PYTHONPATH": str(PROJECT_ROOT),
            }
        )
        env.update(self.env_extra)
        env.update(overrides)
        return env

    def _spawn(
        self, name: str, module: str, env: dict[str, str], port: int | None
    ) -> ServiceProcess:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", module],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        service = ServiceProcess(name, process, log_path, port)
        self.started.append(service)
        return service

    async def gateway(self, name: str = "gateway", **env: str) -> ServiceProcess:
        service = await self.serving_gateway(name, **env)
        await wait_ready(service)
        return service

    async def serving_gateway(self, name: str = "gateway", **env: str) -> ServiceProcess:
        """A gateway once it answers ``/readyz``, ready or not."""
        port = free_port()
        service = self._spawn(name, "gateway", self._env({"GATEWAY_PORT": str(port), **env}), port)
        await readiness(service)
        return service

    async def worker(self, name: str = "worker", **env: str) -> ServiceProcess:
        service = self._spawn(name, "worker", self._env({"WORKER_ID": name, **env}), None)
        for _ in range(400):
            if service.events("worker.started"):
                return service
            if service.process.poll() is not None:
                raise AssertionError(f"{name} exited: {service.log_path.read_text()[-2000:]}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name} did not start")

    def stop_all(self) -> None:
        for service in reversed(self.started):
            service.signal(signal.SIGTERM)
        for service in reversed(self.started):
            try:
                service.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()

    def __iter__(self) -> Iterator[ServiceProcess]:
        return iter(self.started)


def chat_processes(connections: ConnectionSettings, log_dir: Path) -> ProcessGroup:
    """Processes that know the tests' API keys and set no per-user limit that a test sending
    many chats would reach."""
    return ProcessGroup(
        connections,
        log_dir,
        env_extra={
            "AUTH_API_KEYS": f"{API_KEY}=alice,{OTHER_API_KEY}=bob",
            "MAX_STREAMS_PER_USER": "10000",
            "RATE_LIMIT_PER_MINUTE": "1000000",
        },
    )


async def wait_ready(service: ServiceProcess) -> None:
    for _ in range(400):
        if (await readiness(service))[0] == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{service.name} did not become ready")


async def readiness(service: ServiceProcess) -> tuple[int, dict[str, Any]]:
    """The status and body of the first answer to ``/readyz``, once the process serves."""
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            if service.process.poll() is not None:
                raise AssertionError(
                    f"{service.name} exited: {service.log_path.read_text()[-2000:]}"
                )
            try:
                async with http.get(f"{service.url}/readyz") as response:
                    return response.status, await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{service.name} never answered /readyz")
