"""The ``memory`` step: the session's summary and the project's memory, as seed 003 keeps them.

The session summary is the list of questions asked so far (the topics of the conversation),
trimmed to a size; the project memory is a capped list of what was asked and which documents
answered it, newest first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared.names import Names

SUMMARY_MAX_CHARS = 1000
SUMMARY_PREFIX = "Questions so far: "


@dataclass(frozen=True, slots=True)
class MemoryUpdate:
    summary_chars: int
    project_items: int


async def read_summary(redis: Redis, names: Names, session_id: str) -> str:
    raw = await redis.get(names.session_summary(session_id))
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def extend_summary(summary: str, question: str) -> str:
    """The summary with ``question`` added, its oldest questions dropped past the size."""
    asked = summary.removeprefix(SUMMARY_PREFIX).split(" | ") if summary else []
    asked.append(" ".join(question.split())[:200])
    while len(asked) > 1 and len(SUMMARY_PREFIX) + len(" | ".join(asked)) > SUMMARY_MAX_CHARS:
        asked.pop(0)
    return SUMMARY_PREFIX + " | ".join(asked)


async def remember(
    redis: Redis,
    names: Names,
    *,
    session_id: str,
    project: str | None,
    question: str,
    query: str,
    citations: list[dict[str, Any]],
    project_items: int,
    ttl_s: int = 30 * 24 * 3600,
) -> MemoryUpdate:
    summary = extend_summary(await read_summary(redis, names, session_id), question)
    async with redis.pipeline(transaction=True) as tx:
        tx.set(names.session_summary(session_id), summary, ex=ttl_s)
        if project is not None:
            entry = {
                "sessionId": session_id,
                "question": question,
                "query": query,
                "documents": sorted({str(c["document"]) for c in citations}),
                "atMs": int(time.time() * 1000),
            }
            tx.lpush(names.project_memory(project), json.dumps(entry))
            tx.ltrim(names.project_memory(project), 0, project_items - 1)
            tx.llen(names.project_memory(project))
        results = await tx.execute()
    items = int(results[-1]) if project is not None else 0
    return MemoryUpdate(len(summary), items)
