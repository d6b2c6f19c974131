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

from shared import redis_scripts
from shared.names import Names
from shared.redis_client import RedisClient

SUMMARY_MAX_CHARS = 1000
SUMMARY_PREFIX = "Questions so far: "


@dataclass(frozen=True, slots=True)
class MemoryUpdate:
    summary_chars: int
    project_items: int


async def read_summary(redis: RedisClient, names: Names, session_id: str) -> str:
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


# KEYS: the job's message, the session's summary. ARGV: the summary, its ttl. Nothing is
# written once the job's message is gone: its session was deleted while the job ran, and a
# summary written then would greet whoever creates a session with that id next. Returns
# whether it was written.
_SUMMARIZE_IF_KEPT = redis_scripts.LuaScript(
    """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""
)


async def remember(
    redis: RedisClient,
    names: Names,
    *,
    session_id: str,
    message_id: str,
    project: str | None,
    question: str,
    query: str,
    citations: list[dict[str, Any]],
    project_items: int,
    ttl_s: int = 30 * 24 * 3600,
) -> MemoryUpdate:
    """Add ``question`` to the session's summary, and to the project's memory with what
    answered it; nothing when the session was deleted meanwhile (``message_id``, the job's
    answer, is gone)."""
    summary = extend_summary(await read_summary(redis, names, session_id), question)
    keys = [names.message(message_id), names.session_summary(session_id)]
    if not await _SUMMARIZE_IF_KEPT.run(redis, keys, [summary, ttl_s]):
        return MemoryUpdate(0, 0)
    if project is None:
        return MemoryUpdate(len(summary), 0)
    entry = {
        "sessionId": session_id,
        "question": question,
        "query": query,
        "documents": sorted({str(c["document"]) for c in citations}),
        "atMs": int(time.time() * 1000),
    }
    # The project's memory lies in the project's slot of a cluster, not the session's: a
    # session deleted between the two steps leaves this one entry (the memory is the
    # project's, and outlives its sessions anyway).
    memory = names.project_memory(project)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(memory, json.dumps(entry))
        pipe.ltrim(memory, 0, project_items - 1)
        pipe.llen(memory)
        *_, items = await pipe.execute()
    return MemoryUpdate(len(summary), int(items))
