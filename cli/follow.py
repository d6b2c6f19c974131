"""Following one answer's stream over HTTP, resuming after a dropped or silent connection.

The first request POSTs the message; every later one is ``GET /api/v1/streams/{jobId}`` with
``Last-Event-ID``, after a jittered exponential backoff. Events already seen are dropped by seq,
so the caller sees each event once, whatever the connection did."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cli.sse_reader import SseDecoder

TERMINAL_TYPES = frozenset({"end", "error"})
RECONNECTING = "reconnecting"


class ApiError(Exception):
    """The gateway answered with the contract's error body, or could not be reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status in {0, 429} or self.status >= 500


class StreamCutError(Exception):
    """The connection ended, failed or fell silent before the job's final event."""


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 10.0
    max_attempts: int = 8

    def delay_s(self, attempt: int) -> float:
        """Equal jitter: half the exponential step is fixed, half random, so clients that lost
        the same server do not all come back at once."""
        step = min(self.max_s, self.initial_s * 2.0 ** max(0, attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


@dataclass(slots=True)
class StreamState:
    job_id: str | None = None
    session_id: str | None = None
    last_seq: int = 0
    connections: int = 0


@dataclass(slots=True)
class Follower:
    """An async iterator over one answer's events, with ``{"type": "reconnecting", ...}``
    inserted before each resume."""

    session: aiohttp.ClientSession
    base_url: str
    path: str
    body: dict[str, Any]
    backoff: Backoff = field(default_factory=Backoff)
    # No byte for this long (heartbeats included) means the connection is dead.
    silence_timeout_s: float = 45.0
    state: StreamState = field(default_factory=StreamState)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        attempt = 0
        while True:
            try:
                async for event in self._connection():
                    attempt = 0
                    yield event
                    if event["type"] in TERMINAL_TYPES:
                        return
                cut: Exception = StreamCutError("the stream closed before its end event")
            except ApiError as e:
                if not e.retryable or self.state.job_id is None:
                    raise
                cut = e
            except (aiohttp.ClientError, TimeoutError, StreamCutError) as e:
                if self.state.job_id is None:
                    raise ApiError(0, "network", f"cannot reach the gateway: {e}") from e
                cut = e
            attempt += 1
            if attempt > self.backoff.max_attempts:
                raise ApiError(0, "network", f"gave up after {attempt - 1} attempts: {cut}")
            delay_s = self.backoff.delay_s(attempt)
            yield {"type": RECONNECTING, "attempt": attempt, "delayS": delay_s, "reason": str(cut)}
            await asyncio.sleep(delay_s)

    async def _connection(self) -> AsyncIterator[dict[str, Any]]:
        headers = {"Accept": "text/event-stream"}
        if self.state.job_id is None:
            request = self.session.post(self.base_url + self.path, json=self.body, headers=headers)
        else:
            headers["Last-Event-ID"] = str(self.state.last_seq)
            url = f"{self.base_url}/api/v1/streams/{self.state.job_id}"
            request = self.session.get(url, headers=headers)
        async with request as response:
            self.state.connections += 1
            await raise_for_error(response)
            if not response.content_type.startswith("text/event-stream"):
                raise ApiError(response.status, "not_a_stream", "the gateway did not stream")
            self.state.job_id = response.headers.get("X-Job-Id", self.state.job_id)
            self.state.session_id = response.headers.get("X-Session-Id", self.state.session_id)
            decoder = SseDecoder()
            async for chunk in _chunks(response, self.silence_timeout_s):
                for message in decoder.feed(chunk):
                    event = self._accept(message.data, message.id)
                    if event is not None:
                        yield event

    def _accept(self, data: str, seq_text: str | None) -> dict[str, Any] | None:
        try:
            event = json.loads(data)
        except ValueError:
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return None
        if seq_text is not None and seq_text.isdigit():
            seq = int(seq_text)
            if seq <= self.state.last_seq:
                return None
            self.state.last_seq = seq
        if event["type"] == "error" and event.get("code") == "slow_client":
            # The gateway cut us for reading slowly and asks us to resume.
            raise StreamCutError(str(event.get("error")))
        if event["type"] == "start":
            self.state.job_id = str(event.get("jobId") or self.state.job_id)
        return event


async def _chunks(
    response: aiohttp.ClientResponse, silence_timeout_s: float
) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(silence_timeout_s):
                chunk = await response.content.readany()
        except TimeoutError as e:
            raise StreamCutError("the connection fell silent") from e
        except aiohttp.ClientPayloadError as e:
            raise StreamCutError(f"the connection dropped: {e}") from e
        if not chunk:
            return
        yield chunk


async def raise_for_error(response: aiohttp.ClientResponse) -> None:
    """Turn a non-2xx answer into an ApiError carrying the contract's code and message."""
    if response.status < 400:
        return
    code, message = f"http_{response.status}", response.reason or "request failed"
    try:
        body = await response.json(content_type=None)
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        pass
    raise ApiError(response.status, code, message)
