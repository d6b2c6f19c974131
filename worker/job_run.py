"""One run of a job: what a pipeline reports through, and the accounting behind the final event.

A pipeline calls :meth:`JobRun.progress` and :meth:`JobRun.token`; the worker opens the run with
``start`` and closes it with ``end`` (or ``error``), so no pipeline can forget either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shared import events
from shared.wire import Job
from worker.event_log import JobEventLog


@dataclass
class JobRun:
    job: Job
    log: JobEventLog
    started_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    tokens: int = 0
    _parts: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self._parts)

    async def start(self) -> None:
        await self.log.emit(
            events.START,
            events.start_payload(
                job_id=self.job.job_id,
                session_id=self.job.session_id,
                message_id=self.job.message_id,
            ),
        )

    async def progress(
        self, step: str, message: str, *, details: str = "", metadata: dict[str, Any] | None = None
    ) -> None:
        await self.log.emit(
            events.PROGRESS,
            events.progress_payload(step, message, details=details, metadata=metadata),
        )

    async def checkpoint(self) -> None:
        """A point where a pipeline may be stopped; cancellation is wired in here."""
        return None

    async def token(self, text: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self.tokens += 1
        self._parts.append(text)
        await self.log.emit(events.TOKEN, events.token_payload(text))

    @property
    def ttft_ms(self) -> int | None:
        if self.first_token_at is None:
            return None
        return round((self.first_token_at - self.started_at) * 1000)

    @property
    def duration_ms(self) -> int:
        return round((time.monotonic() - self.started_at) * 1000)

    async def end(self, finish_reason: str, citations: list[dict[str, Any]] | None = None) -> None:
        await self.log.emit(
            events.END,
            events.end_payload(
                message_id=self.job.message_id,
                content=self.content,
                finish_reason=finish_reason,
                tokens=self.tokens,
                ttft_ms=self.ttft_ms,
                duration_ms=self.duration_ms,
                citations=citations,
            ),
        )

    async def fail(self, message: str, code: str) -> None:
        await self.log.emit(events.ERROR, events.error_payload(message, code))
