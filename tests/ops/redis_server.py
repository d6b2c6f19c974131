"""deploy/redis/redis.conf on a real redis-server of the test's own, started the way compose
starts it: deploy/redis/with-password.sh writes the password include, then execs Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from launcher.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_CONF = ROOT / "deploy/redis/redis.conf"
WITH_PASSWORD = ROOT / "deploy/redis/with-password.sh"
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class DeployedRedis:
    port: int
    pid: int
    password: str

    def client(self) -> Redis:
        return Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True
        )


@asynccontextmanager
async def deployed_redis(tmp: Path, password: str) -> AsyncIterator[DeployedRedis]:
    port = free_port()
    password_file = tmp / "redis_password"
    password_file.write_text(password + "\n")
    include = tmp / "run" / "password.conf"
    env = {
        **os.environ,
        "REDIS_PASSWORD_FILE": str(password_file),
        "REDIS_PASSWORD_INCLUDE": str(include),
    }
    # The compose command, with a port, an address and a log of this test's own.
    argv = ["redis-server", str(REDIS_CONF), "--include", str(include)]
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no"]
    argv += ["--logfile", str(tmp / "redis.log")]
    process = await asyncio.create_subprocess_exec(
        "sh", str(WITH_PASSWORD), *argv, stdout=subprocess.DEVNULL, cwd=tmp, env=env
    )
    server = DeployedRedis(port, process.pid, password)
    redis = server.client()
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                try:
                    await redis.ping()
                    break
                except (OSError, RedisConnectionError):
                    assert process.returncode is None, (tmp / "redis.log").read_text()
                    await asyncio.sleep(0.05)
        yield server
    finally:
        await redis.aclose()
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)
