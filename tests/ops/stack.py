"""Real chatstream processes for the operations tests: gateways and a worker started with
``python -m``, and nginx in front of them with deploy/'s configuration. Every process writes
its JSON log lines to a file of its own; everything is stopped when the test ends."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from launcher.ports import free_port
from tests.conftest import AMQP_URL, API_KEY, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy/nginx/chatstream.conf"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0

NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/chatstream.conf;
}}
"""


def render_nginx(tmp: Path, upstream_ports: list[int], listen_port: int) -> Path:
    """deploy/nginx/chatstream.conf with its upstream servers and listen port pointed at this
    machine, inside a main config whose every path is under ``tmp``. Returns the main file."""
    conf = NGINX_CONF.read_text()
    server = re.search(r"^(\s*)server gateway:8080( [^;]*)?;$", conf, re.M)
    assert server is not None, "the upstream server line of deploy/nginx/chatstream.conf moved"
    indent, options = server.group(1), server.group(2) or ""
    # Fixed addresses need no resolving, and Debian's nginx (1.22) predates `resolve`.
    options = options.replace(" resolve", "")
    servers = "\n".join(f"{indent}server 127.0.0.1:{port}{options};" for port in upstream_ports)
    conf = conf.replace(server.group(0), servers)
    conf, listens = re.subn(
        r"^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{listen_port};", conf, flags=re.M
    )
    assert listens == 1
    (tmp / "chatstream.conf").write_text(conf)
    main = tmp / "nginx.conf"
    main.write_text(NGINX_MAIN.format(tmp=tmp))
    return main


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    metrics_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """Two gateways, one worker and nginx, all on free ports and one test namespace."""

    tmp: Path
    namespace: str
    env_overrides: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "REDIS_URL": REDIS_URL,
            "AMQP_URL": AMQP_URL,
            "CHATSTREAM_NAMESPACE": self.namespace,
            "AUTH_API_KEYS": f"{API_KEY}=alice",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **self.env_overrides,
            **extra,
        }
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        service = Service(name, process, log_path)
        self.services[name] = service
        return service

    def start_gateway(self, name: str) -> Service:
        port = free_port()
        service = self._spawn(
            name,
            [sys.executable, "-m", "gateway"],
            self.env(GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port)),
        )
        service.port = service.metrics_port = port
        return service

    def start_worker(self, name: str) -> Service:
        metrics_port = free_port()
        service = self._spawn(
            name,
            [sys.executable, "-m", "worker"],
            self.env(WORKER_ID=name, WORKER_METRICS_PORT=str(metrics_port)),
        )
        service.metrics_port = metrics_port
        return service

    def start_nginx(self, upstreams: list[Service]) -> Service:
        port = free_port()
        main = render_nginx(self.tmp, [u.port for u in upstreams], port)
        service = self._spawn(
            "nginx",
            [
                "nginx",
                "-p",
                str(self.tmp),
                "-c",
                str(main),
                "-e",
                str(self.tmp / "nginx-error.log"),
            ],
            dict(os.environ),
        )
        service.port = port
        return service

    async def wait_ready(self) -> None:
        """Every gateway and the worker answer /readyz (compose's healthchecks), nginx
        /healthz."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            for service in self.services.values():
                path = "/readyz" if service.name.startswith("gateway") else "/healthz"
                url = f"{service.url}{path}"
                if service.name.startswith("worker"):
                    url = f"http://127.0.0.1:{service.metrics_port}/readyz"
                await _wait_for(http, url, service)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        service = self.services[name]
        service.process.send_signal(sig)
        service.process.wait(timeout=STOP_TIMEOUT_S)

    def stop_all(self) -> None:
        """SIGTERM everything (so each flushes its last lines), then SIGKILL what lingers."""
        for service in self.services.values():
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services.values():
            try:
                service.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait(timeout=STOP_TIMEOUT_S)

    def log_text(self) -> str:
        return "\n".join(
            f"--- {s.name}\n{s.log_path.read_text(errors='replace')[-4000:]}"
            for s in self.services.values()
        )


async def _wait_for(http: aiohttp.ClientSession, url: str, service: Service) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{service.name} was not ready at {url} within {START_TIMEOUT_S} s")
