"""What the async and the sync client share: where the gateway is, how to authenticate, and
how patient to be."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from chatstream_client.follow import Backoff, Follow, HttpRequest
from chatstream_client.version import __version__

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ClientConfig:
    base_url: str
    api_key: str | None
    # No byte for this long, heartbeats included, means the connection is dead: three of the
    # gateway's default 15 s heartbeats.
    heartbeat_timeout_s: float
    backoff: Backoff

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self, extra: dict[str, str], *, stream: bool = False) -> dict[str, str]:
        headers = {"User-Agent": f"chatstream-client/{__version__}", **extra}
        if stream:
            headers["Accept"] = "text/event-stream"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(
            self.heartbeat_timeout_s,
            connect=CONNECT_TIMEOUT_S,
            write=CONNECT_TIMEOUT_S,
            pool=CONNECT_TIMEOUT_S,
        )

    def follow(
        self,
        opening: HttpRequest | None,
        *,
        job_id: str | None = None,
        last_event_id: int = 0,
        ticket: str | None = None,
    ) -> Follow:
        return Follow(
            opening,
            job_id=job_id,
            last_event_id=last_event_id,
            ticket=ticket,
            backoff=self.backoff,
        )
