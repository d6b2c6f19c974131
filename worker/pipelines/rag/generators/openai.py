"""The ``openai`` generator: streams from any OpenAI-compatible ``/v1/chat/completions``
(vLLM, Ollama, llama.cpp's server, OpenAI).

aiohttp rather than the ``openai`` package, for exact control of the upstream connection: it is
closed (not returned to a pool) the moment the job is cancelled, so the model stops generating.
The request is retried only before the first token; once text has reached the client a retry
would repeat it. Upstream failures become :class:`PipelineError` with an ``upstream_*`` code.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from shared.events import FINISH_LENGTH, FINISH_STOP
from shared.logging import get_logger
from worker.pipelines import PipelineError
from worker.pipelines.rag.generators import (
    Checkpoint,
    Emit,
    GenerationRequest,
    GenerationResult,
    citation,
)
from worker.pipelines.rag.generators.prompt import build_messages

log = get_logger(__name__)

_CITED = re.compile(r"\[(\d+)\]")
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_DONE = "[DONE]"
CHECK_INTERVAL_S = 0.25
T = TypeVar("T")


class _Retryable(Exception):
    """A failure before the first token, worth one more attempt."""


@dataclass(frozen=True, slots=True)
class OpenAIGenerator:
    base_url: str
    model: str
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    attempts: int = 2

    async def generate(
        self, request: GenerationRequest, emit: Emit, checkpoint: Checkpoint
    ) -> GenerationResult:
        body = {"model": self.model, "messages": build_messages(request), "stream": True}
        for attempt in range(1, self.attempts + 1):
            try:
                return await _until_cancelled(self._attempt(request, body, emit), checkpoint)
            except _Retryable as e:
                log.warning("llm.retry", attempt=attempt, error=str(e))
                if attempt == self.attempts:
                    raise PipelineError(f"the model server failed: {e}", "upstream_error") from e
        raise AssertionError("unreachable")

    async def _attempt(
        self, request: GenerationRequest, body: dict[str, Any], emit: Emit
    ) -> GenerationResult:
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        timeout = aiohttp.ClientTimeout(
            sock_connect=self.connect_timeout_s, sock_read=self.read_timeout_s
        )
        # One connection per answer, never pooled: closing it is how a cancel reaches the model.
        connector = aiohttp.TCPConnector(force_close=True, limit=1)
        parts: list[str] = []
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            try:
                response = await session.post(
                    f"{self.base_url.rstrip('/')}/chat/completions", json=body, headers=headers
                )
            except (aiohttp.ClientError, TimeoutError) as e:
                raise _Retryable(f"{type(e).__name__}: {e}") from e
            try:
                finish = await self._read(response, parts, emit)
            except (aiohttp.ClientError, TimeoutError) as e:
                response.close()
                if not parts:
                    raise _Retryable(f"{type(e).__name__}: {e}") from e
                raise PipelineError(
                    f"the model server broke off the answer: {type(e).__name__}",
                    "upstream_error",
                ) from e
            except BaseException:
                # Cancelled, or failed: closing the connection is what stops the model.
                response.close()
                raise
            finally:
                response.release()
        text = "".join(parts)
        by_number = {p.number: p for p in request.passages}
        cited = sorted({int(n) for n in _CITED.findall(text)} & by_number.keys())
        return GenerationResult(finish, [citation(by_number[n], []) for n in cited])

    async def _read(self, response: aiohttp.ClientResponse, parts: list[str], emit: Emit) -> str:
        if response.status != 200:
            detail = (await response.text())[:200]
            message = f"the model server answered {response.status}: {detail}"
            if response.status in _RETRYABLE_STATUS:
                raise _Retryable(message)
            raise PipelineError(message, "upstream_error")
        finish = FINISH_STOP
        async for raw_line in response.content:
            line = raw_line.decode("utf-8", errors="replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments (keep-alives), event names
            data = line[len("data:") :].strip()
            if data == _DONE:
                return finish
            chunk = _parse_chunk(data)
            if "error" in chunk:
                raise PipelineError(_error_message(chunk["error"]), "upstream_error")
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
                    await emit(content)
                if choice.get("finish_reason") == "length":
                    finish = FINISH_LENGTH
        if not parts:
            raise _Retryable("the stream ended before any token")
        raise PipelineError("the model server ended the stream without [DONE]", "upstream_error")


async def _until_cancelled(work: Coroutine[Any, Any, T], checkpoint: Checkpoint) -> T:
    """Run ``work``, passing a checkpoint every ``CHECK_INTERVAL_S`` while it waits on a silent
    model, so a cancel is seen within a second even when no token arrives."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=CHECK_INTERVAL_S)
            if done:
                return task.result()
            await checkpoint()
    finally:
        if not task.done():
            task.cancel()
            # Wait for its cleanup (the upstream connection closed); its own outcome is moot.
            await asyncio.wait({task})


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as e:
        raise PipelineError("the model server sent a malformed chunk", "upstream_error") from e
    if not isinstance(chunk, dict):
        raise PipelineError("the model server sent a malformed chunk", "upstream_error")
    return chunk


def _error_message(error: object) -> str:
    if isinstance(error, dict):
        return f"the model server failed: {error.get('message', 'unknown error')}"
    return f"the model server failed: {error}"
