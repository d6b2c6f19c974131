"""The peer row's server: nchan, Debian's nginx with ``libnginx-mod-nchan`` (``make bench``
installs them: bench/install-nchan.sh), its messages in Redis, measured by the same load client
and publishing loop as chatstream's relay (the ``nchan_peer`` scenario).

Everything it runs is its own: an nginx on a free port, its configuration, pid file and logs in
a folder of the run's, and a ``redis-server`` on a free port (``launcher.local_redis``), so
nothing touches the shared Redis's keys (nchan names its keys itself). Both are stopped after
the measurement, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import procs, usage
from launcher.local_redis import RedisProcess
from launcher.ports import HOST, free_port

MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
READY_TIMEOUT_S = 30.0
# A publish to this channel answers 2xx only once nchan is connected to its Redis.
READY_CHANNEL = "bench-ready"

# One worker process: chatstream's gateway is one process (one event loop, at most one core),
# so one nginx worker is its peer. nchan's own settings are its defaults but the store, Redis in
# its default "distributed" mode (every message goes through Redis, as chatstream's events do);
# it buffers the last 10 messages per channel there (chatstream's replay log keeps a job's
# events). No access log: the gateway logs no line per event either. The publisher's connections
# are kept for the whole run, as a worker keeps its Redis connection.
CONFIG = """\
load_module {module};
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    # The publisher's kept-alive connections carry every publish of a phase; nginx closes a
    # connection after 1,000 requests by default.
    keepalive_requests 100000000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream bench_redis {{
        nchan_redis_server redis://{host}:{redis_port};
        nchan_redis_storage_mode distributed;
    }}
    server {{
        listen {host}:{port};
        location ~ ^/sub/(\\w+)$ {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
            nchan_redis_pass bench_redis;
        }}
        location = /pub {{
            nchan_publisher http;
            nchan_channel_id $arg_id;
            nchan_redis_pass bench_redis;
        }}
        location = /readyz {{
            return 200 "ok";
        }}
    }}
}}
"""


def unavailable() -> str | None:
    """Why nchan cannot be measured here, or None when it can."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (bench/install-nchan.sh installs it as root)"
    if not MODULE.exists():
        return f"{MODULE} is missing: libnginx-mod-nchan is not installed (bench/install-nchan.sh)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


def _nginx() -> str:
    found = shutil.which("nginx")
    if found is None:
        raise RuntimeError(unavailable())
    return found


@dataclass
class NchanServer:
    """nginx with nchan on a free port, and the redis-server it stores its messages in."""

    directory: Path
    port: int = 0
    redis: RedisProcess | None = None
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        # Absolute: redis-server changes into its folder before opening its log, and nginx
        # reads its config's paths against its prefix (the results folder is relative).
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.redis = RedisProcess(self.directory / "redis")
            await asyncio.to_thread(self.redis.start)
            self.port = free_port()
            config = self.directory / "nginx.conf"
            config.write_text(
                CONFIG.format(
                    module=MODULE,
                    dir=self.directory,
                    host=HOST,
                    port=self.port,
                    redis_port=self.redis.port,
                )
            )
            log = self.directory / "nginx.log"
            # -e: nginx opens its compiled-in error log before reading the config otherwise.
            command = [_nginx(), "-c", str(config), "-p", str(self.directory)]
            command += ["-e", str(self.directory / "error.log")]
            self.process = await procs.spawn(command, os.environ, log)
            await procs.wait_ready(self.url, self.process, log)
            await self._wait_connected_to_redis()
        except BaseException:
            await self.stop()
            raise

    async def _wait_connected_to_redis(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    url = f"{self.url}/pub?id={READY_CHANNEL}"
                    async with http.post(url, data=b"ready") as response:
                        if response.status in (201, 202):
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"nchan never reached its Redis; see {self.directory}/error.log")

    def pids(self) -> list[int]:
        """nginx's master and its worker, whose CPU the row reports."""
        assert self.process is not None
        return [self.process.pid, *usage.children(self.process.pid)]

    def redis_pids(self) -> list[int]:
        assert self.redis is not None and self.redis.process is not None
        return [self.redis.process.pid]

    async def stop(self) -> None:
        # SIGTERM is nginx's fast shutdown: the master stops its worker, then exits.
        if self.process is not None:
            await procs.stop_all([self.process])
        if self.redis is not None:
            await asyncio.to_thread(self.redis.kill)
