"""One run of a job: what a pipeline reports through, and the accounting behind the final event.

A pipeline calls :meth:`JobRun.progress` and :meth:`JobRun.token`; the worker opens the run with
``start`` and closes it with ``end`` (or ``error``), so no pipeline can forget either. Each event
that changes the stored assistant message carries that change in the same round trip. Events
are queued (see worker.event_log); ``end`` and ``fail`` return once everything is in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from shared import events, job_trace, tracing
from shared.job import Job
from shared.messages import (
    JOB_RUNNING,
    STATUS_CANCELLED,
    STATUS_COMPLETE,
    STATUS_ERROR,
    STATUS_STREAMING,
    MessageStore,
)
from shared.redis_client import RedisPipeline
from worker.cancellation import Cancellation
from worker.event_log import JobEventLog, MergeableStaging, Staging

# Span attributes of the generation (the second after OpenTelemetry's GenAI conventions).
GENERATOR = "chatstream.generator"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"


class JobCancelledError(Exception):
    """Raised at a checkpoint of a job that was cancelled; the worker ends it ``cancelled``."""


@dataclass(frozen=True, slots=True)
class _ContentWrite(MergeableStaging):
    """A token's text, written into the stored message at its byte offset (UTF-8). The tokens
    of one batch are contiguous, so they go as one write."""

    messages: MessageStore
    message_id: str
    offset: int
    end: int
    text: str

    def __call__(self, pipe: RedisPipeline) -> None:
        self.messages.stage_write_at(pipe, self.message_id, self.offset, self.text)

    def merged(self, following: Staging) -> Staging | None:
        if not (
            isinstance(following, _ContentWrite)
            and following.message_id == self.message_id
            and following.offset == self.end
        ):
            return None
        joined = self.text + following.text
        return _ContentWrite(self.messages, self.message_id, self.offset, following.end, joined)


@dataclass
class JobRun:
    job: Job
    log: JobEventLog
    messages: MessageStore
    cancellation: Cancellation = field(default_factory=Cancellation)
    # The job's span while it is traced (its progress steps become its events); else None.
    span: Span | None = None
    started_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    tokens: int = 0
    # The ``end`` event is emitted.
    ended: bool = False
    _parts: list[str] = field(default_factory=list)
    # The UTF-8 length of the content so far: where the next token is written.
    _content_bytes: int = 0
    # Whether the message still existed when the final event was written (read along with it).
    _message_kept: asyncio.Future[Any] | None = None

    @property
    def content(self) -> str:
        return "".join(self._parts)

    async def start(self) -> None:
        def mark_running(pipe: RedisPipeline) -> None:
            self.messages.stage_job_status(pipe, self.job.job_id, JOB_RUNNING)

        payload = events.start_payload(
            job_id=self.job.job_id, session_id=self.job.session_id, message_id=self.job.message_id
        )
        await self.log.emit(events.START, payload, persist=mark_running)

    async def reset(self, reason: str) -> None:
        """Drop what an earlier run of this job streamed; a fresh answer follows."""

        def clear(pipe: RedisPipeline) -> None:
            self.messages.stage_job_status(pipe, self.job.job_id, JOB_RUNNING)
            self._stage_message(pipe, STATUS_STREAMING, content="")

        await self.log.emit(events.RESET, {"reason": reason}, persist=clear)

    async def checkpoint(self) -> None:
        """Stop here if the job was cancelled. Every progress step and token passes one; the
        first waits for the job's cancel flag to be read (see worker.cancellation)."""
        if self.cancellation.flag is not None:
            await self.cancellation.known()
        if self.cancellation.requested:
            raise JobCancelledError(self.cancellation.reason)

    async def progress(
        self, step: str, message: str, *, details: str = "", metadata: dict[str, Any] | None = None
    ) -> None:
        await self.checkpoint()
        if self.span is not None:
            job_trace.record_progress(self.span, step, message, details, metadata)
        await self.log.emit(
            events.PROGRESS,
            events.progress_payload(step, message, details=details, metadata=metadata),
        )

    async def token(self, text: str) -> None:
        await self.checkpoint()
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
            if self.span is not None:
                self.span.add_event("first token", {"ttft_ms": self.ttft_ms or 0})
        self.tokens += 1
        self._parts.append(text)
        offset = self._content_bytes
        self._content_bytes += len(text.encode())
        write = _ContentWrite(self.messages, self.job.message_id, offset, self._content_bytes, text)
        await self.log.emit(events.TOKEN, events.token_payload(text), persist=write)

    @property
    def ttft_ms(self) -> int | None:
        if self.first_token_at is None:
            return None
        return round((self.first_token_at - self.started_at) * 1000)

    @property
    def duration_ms(self) -> int:
        return round((time.monotonic() - self.started_at) * 1000)

    @contextlib.contextmanager
    def generating(self, generator: str) -> Iterator[None]:
        """Around the answer's generation: a span with its time to first token and its token
        count, while the job is traced."""
        if self.span is None:
            yield
            return
        tokens_before = self.tokens
        with tracing.span("generation", {GENERATOR: generator}) as generation:
            try:
                yield
            finally:
                if generation is not None:
                    generation.set_attribute(OUTPUT_TOKENS, self.tokens - tokens_before)
                    if self.ttft_ms is not None:
                        generation.set_attribute(job_trace.TTFT_MS, self.ttft_ms)

    async def end(self, finish_reason: str, citations: list[dict[str, Any]] | None = None) -> None:
        await self.emit_end(finish_reason, citations)
        await self.written()

    async def written(self) -> None:
        """Wait until every event queued, the final one with its writes, is in Redis."""
        with tracing.span("final write"):
            await self.log.flush()

    async def emit_end(
        self, finish_reason: str, citations: list[dict[str, Any]] | None = None
    ) -> None:
        """Queue the ``end`` event without waiting for it to be sent (:meth:`end` waits)."""
        payload = events.end_payload(
            message_id=self.job.message_id,
            content=self.content,
            finish_reason=finish_reason,
            tokens=self.tokens,
            ttft_ms=self.ttft_ms,
            duration_ms=self.duration_ms,
            citations=citations,
        )
        status = STATUS_CANCELLED if finish_reason == events.FINISH_CANCELLED else STATUS_COMPLETE

        def settle(pipe: RedisPipeline) -> None:
            self._stage_message(
                pipe,
                status,
                content=self.content,
                citations=payload["citations"],
                usage=payload["usage"],
            )
            self.messages.stage_job_end(pipe, self.job.job_id, self.log.last_seq)

        # Ended from the moment the end takes its seq: its emit may then wait for a full queue to
        # flush, and a cancellation landing meanwhile must not emit a second end after it.
        self.ended = True
        self._read_message_kept()
        await self.log.emit(events.END, payload, persist=settle)

    async def fail(self, message: str, code: str, retry_after_s: float | None = None) -> None:
        def settle(pipe: RedisPipeline) -> None:
            self._stage_message(pipe, STATUS_ERROR, content=self.content)
            self.messages.stage_job_end(pipe, self.job.job_id, self.log.last_seq)

        self._read_message_kept()
        retry_after_ms = None if retry_after_s is None else math.ceil(retry_after_s * 1000)
        payload = events.error_payload(message, code, retry_after_ms)
        await self.log.emit(events.ERROR, payload, persist=settle)
        await self.written()

    def _read_message_kept(self) -> None:
        if self._message_kept is None:
            self._message_kept = self.log.read_along(self._stage_message_exists)

    def _stage_message_exists(self, pipe: RedisPipeline) -> None:
        self.messages.stage_message_exists(pipe, self.job.message_id)

    async def forget_if_session_deleted(self) -> None:
        """Once the final event is in Redis: if the job's session was deleted while it ran,
        what the job wrote since goes too (``MessageStore.forget_job``). Its open streams have
        had the final event by then, published with it."""
        kept = self._message_kept
        if kept is None or not kept.done() or kept.cancelled() or kept.exception() is not None:
            return
        if not kept.result():
            await self.messages.forget_job(self.job.job_id)

    def _stage_message(
        self,
        pipe: RedisPipeline,
        status: str,
        *,
        content: str,
        citations: list[Any] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        self.messages.stage_settle(
            pipe,
            message_id=self.job.message_id,
            session_id=self.job.session_id,
            user_id=self.job.user_id,
            status=status,
            content=content,
            citations=citations,
            usage=usage,
        )
