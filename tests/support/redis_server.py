"""A private redis-server for fault tests: killed and restarted on the same port at will, so
the machine's shared Redis is never disturbed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from tests.support.processes import free_port


@dataclass
class PrivateRedis:
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.port = self.port or free_port()
        self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the server runs on
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return
                except OSError:
                    pass
                except Exception:
                    pass
                await asyncio.sleep(0.025)
        finally:
            await client.aclose()
        raise AssertionError("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
