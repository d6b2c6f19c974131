"""A stand-in OpenAI-compatible model server: ``POST /v1/chat/completions`` answers with a
recorded OpenAI response from tests/fixtures/openai, replayed byte for byte (its status, its
headers and its body), and keeps a record of each request.

Each request takes the next scenario: the name of a fixture (``stream``, ``invalid_api_key``,
``rate_limit_exceeded``, ...) or one of two behaviours no recording holds, ``hang`` (a word now
and then until the client goes away) and ``silent`` (the same, without the words)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openai"
# The longest a "hang" scenario keeps its stream open: bounded, whatever the client does.
HANG_MAX_CHUNKS = 500
HANG_PERIOD_S = 0.02
_SSE_EVENT_END = b"\n\n"


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded HTTP response: ``HTTP/1.1 <status> <reason>``, header lines, a blank line,
    then the body exactly as the server sent it."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def load(cls, name: str) -> Recording:
        raw = (FIXTURES / f"{name}.http").read_bytes()
        head, _, body = raw.partition(b"\n\n")
        status_line, *header_lines = head.decode().split("\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        return cls(int(status_line.split(" ")[1]), headers, body)

    @property
    def streamed(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def events(self) -> list[bytes]:
        """The body's SSE events, each with its blank line: joined, they are the body."""
        *whole, rest = self.body.split(_SSE_EVENT_END)
        return [piece + _SSE_EVENT_END for piece in whole] + ([rest] if rest else [])

    def tokens(self) -> list[str]:
        """The ``content`` of each chunk that has one: what a client must receive as tokens."""
        found = []
        for event in self.events():
            data = event.strip().removeprefix(b"data: ")
            if data == b"[DONE]":
                continue
            for choice in json.loads(data).get("choices", []):
                if choice["delta"].get("content"):
                    found.append(choice["delta"]["content"])
        return found

    def json(self) -> dict[str, Any]:
        body = json.loads(self.body)
        assert isinstance(body, dict)
        return body


@dataclass
class StandIn:
    """``requests`` keeps each request's JSON body, ``headers`` its headers, ``arrivals`` the
    monotonic time it came in."""

    scenarios: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        return app

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        scenario = self.scenarios.pop(0) if self.scenarios else "stream"
        if scenario in ("hang", "silent"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await self._hang(request, response, write=scenario == "hang")
            return response
        recording = Recording.load(scenario)
        if not recording.streamed:
            return web.Response(
                status=recording.status, headers=recording.headers, body=recording.body
            )
        response = web.StreamResponse(status=recording.status, headers=recording.headers)
        await response.prepare(request)
        # One write per event, as the model server flushes each chunk when it has it.
        for event in recording.events():
            await response.write(event)
        return response

    async def _hang(
        self, request: web.Request, response: web.StreamResponse, *, write: bool
    ) -> None:
        """Stream a word now and then (or stay silent) until the client's connection goes away."""
        try:
            await self._hang_until_gone(request, response, write=write)
        except asyncio.CancelledError:
            # aiohttp cancels a handler whose client connection was lost: check that it was.
            if request.transport is None or request.transport.is_closing():
                self.disconnected.set()
            raise

    async def _hang_until_gone(
        self, request: web.Request, response: web.StreamResponse, *, write: bool
    ) -> None:
        # The recorded stream's opening chunk (the role), then its first word again and again.
        role, word, *_ = Recording.load("stream").events()
        await response.write(role)
        for _ in range(HANG_MAX_CHUNKS):
            transport = request.transport
            if transport is None or transport.is_closing():
                self.disconnected.set()
                return
            try:
                if write:
                    await response.write(word)
            except ConnectionError:
                self.disconnected.set()
                return
            await asyncio.sleep(HANG_PERIOD_S)
