"""A private redis-server for fault tests: killed and restarted on the same port at will, so
the machine's shared Redis is never disturbed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from launcher.local_redis import RedisProcess
from launcher.ports import free_port


@dataclass
class PrivateRedis:
    directory: Path
    port: int = 0
    server: RedisProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start it, on the port it had before if it ran already."""
        self.port = self.port or free_port()
        self.server = RedisProcess(self.directory, port=self.port)
        # Off the loop: the test's own gateway keeps serving while the server comes up.
        await asyncio.to_thread(self.server.start)

    def kill(self) -> None:
        if self.server is not None:
            self.server.kill()
        self.server = None
