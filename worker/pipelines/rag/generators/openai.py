"""The ``openai`` generator: streams from any OpenAI-compatible ``/v1/chat/completions``
(vLLM, Ollama, llama.cpp's server, OpenAI).

aiohttp rather than the ``openai`` package, for exact control of the upstream connection: it is
closed (not returned to a pool) the moment the job is cancelled, so the model stops generating.
The request is retried only before the first token; once text has reached the client a retry
would repeat it. Upstream failures become :class:`UpstreamError` with an ``upstream_*`` code
(worker/pipelines/rag/generators/upstream_errors.py).
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
from shared.settings import RagSettings
from worker.pipelines.rag.generators import (
    Checkpoint,
    Emit,
    GenerationRequest,
    GenerationResult,
    citation,
    upstream_errors,
)
from worker.pipelines.rag.generators.prompt import build_messages
from worker.pipelines.rag.generators.upstream_errors import UpstreamError

log = get_logger(__name__)

_CITED = re.compile(r"\[(\d+)\]")
_DONE = "[DONE]"
CHECK_INTERVAL_S = 0.25
# The pause before another attempt when the model server names none.
RETRY_BACKOFF_S = 0.5
# The longest Retry-After waited out before the first token: someone is watching the stream,
# and beyond this an error that says when to try again serves them better than silence.
MAX_RETRY_WAIT_S = 10.0
# An error body is read up to this much: enough for any server's JSON error.
ERROR_BODY_BYTES = 64 * 1024
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OpenAIGenerator:
    base_url: str
    model: str
    api_key: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    attempts: int = 2
    max_retry_wait_s: float = MAX_RETRY_WAIT_S

    @classmethod
    def from_settings(cls, settings: RagSettings) -> OpenAIGenerator:
        if settings.llm_base_url is None or settings.llm_model is None:
            raise ValueError("the openai generator needs LLM_BASE_URL and LLM_MODEL")
        return cls(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            connect_timeout_s=settings.llm_connect_timeout_s,
            read_timeout_s=settings.llm_read_timeout_s,
            attempts=settings.llm_attempts,
        )

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(request),
            "stream": True,
        }
        # Unset, the model server's own defaults apply. ``max_tokens`` rather than OpenAI's
        # newer ``max_completion_tokens``: Ollama and llama.cpp's server read only this one.
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    async def generate(
        self, request: GenerationRequest, emit: Emit, checkpoint: Checkpoint
    ) -> GenerationResult:
        body = self.request_body(request)
        for attempt in range(1, self.attempts + 1):
            try:
                return await _until_cancelled(self._attempt(request, body, emit), checkpoint)
            except UpstreamError as e:
                log.warning(
                    "llm.failed",
                    attempt=attempt,
                    code=e.code,
                    error=e.message,
                    upstream_message=e.detail,
                    retryable=e.retryable,
                )
                wait_s = RETRY_BACKOFF_S if e.retry_after_s is None else e.retry_after_s
                if not e.retryable or attempt == self.attempts or wait_s > self.max_retry_wait_s:
                    raise
                await _until_cancelled(asyncio.sleep(wait_s), checkpoint)
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
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
                raise _unreachable(e) from e
            except (aiohttp.ClientError, TimeoutError) as e:
                # Connected, but no answer came: the server closed or fell silent.
                raise self._broken_off(e, answered=False) from e
            try:
                finish = await self._read(response, parts, emit)
            except (aiohttp.ClientError, TimeoutError) as e:
                response.close()
                raise self._broken_off(e, answered=bool(parts)) from e
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

    def _broken_off(self, error: Exception, *, answered: bool) -> UpstreamError:
        """The failure of a stream that stopped: retryable while no token has gone out."""
        if isinstance(error, TimeoutError):
            message = f"the model server sent nothing for {self.read_timeout_s:g} s"
        else:
            message = f"the model server broke off the answer: {type(error).__name__}"
        return UpstreamError(
            message, upstream_errors.ERROR, retryable=not answered, detail=str(error)
        )

    async def _read(self, response: aiohttp.ClientResponse, parts: list[str], emit: Emit) -> str:
        if response.status != 200:
            body = await response.content.read(ERROR_BODY_BYTES)
            raise upstream_errors.from_response(response.status, response.headers, body)
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
                raise upstream_errors.from_stream_error(chunk["error"])
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
                    await emit(content)
                if choice.get("finish_reason") == "length":
                    finish = FINISH_LENGTH
        raise UpstreamError(
            "the model server ended the stream without [DONE]",
            upstream_errors.ERROR,
            retryable=not parts,
        )


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


def _unreachable(error: Exception) -> UpstreamError:
    return UpstreamError(
        f"the model server could not be reached ({type(error).__name__})",
        upstream_errors.UNREACHABLE,
        retryable=True,
        detail=str(error),
    )


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as e:
        raise UpstreamError("the model server sent a malformed chunk", upstream_errors.ERROR) from e
    if not isinstance(chunk, dict):
        raise UpstreamError("the model server sent a malformed chunk", upstream_errors.ERROR)
    return chunk
