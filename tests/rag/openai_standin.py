"""A stand-in OpenAI-compatible server: ``POST /v1/chat/completions`` streaming the exact
``chat.completion.chunk`` wire format, with scripted failures, and a record of each request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# The longest a "hang" scenario keeps its stream open: bounded, whatever the client does.
HANG_MAX_CHUNKS = 500
HANG_PERIOD_S = 0.02


def chunk(content: str | None, finish_reason: str | None = None, role: bool = False) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    body = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "standin-model",
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


@dataclass
class StandIn:
    """Each request takes the next scenario; ``requests`` keeps each request's JSON body."""

    scenarios: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=lambda: ["Workers", " agree", " [1]", "."])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        return app

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        scenario = self.scenarios.pop(0) if self.scenarios else "ok"
        if scenario == "unavailable":
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("", role=True))
        if scenario in ("hang", "silent"):
            await self._hang(request, response, write=scenario == "hang")
            return response
        for i, word in enumerate(self.words):
            await response.write(chunk(word))
            if scenario == "error_mid" and i == 1:
                error = {"error": {"message": "the model crashed", "type": "server_error"}}
                await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
                return response
        await response.write(chunk(None, "length" if scenario == "length" else "stop"))
        await response.write(b"data: [DONE]\n\n")
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
        for _ in range(HANG_MAX_CHUNKS):
            transport = request.transport
            if transport is None or transport.is_closing():
                self.disconnected.set()
                return
            try:
                if write:
                    await response.write(chunk(" more"))
            except ConnectionError:
                self.disconnected.set()
                return
            await asyncio.sleep(HANG_PERIOD_S)
