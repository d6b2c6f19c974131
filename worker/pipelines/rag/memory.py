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


# KEYS: the job's message, the session's summary, then the project's memory, if any.
# ARGV: the summary, its ttl, then the memory entry and how many entries the memory keeps.
# Nothing is written once the job's message is gone: its session was deleted while the job
# ran, and a summary written then would greet whoever creates a session with that id next.
_REMEMBER_IF_KEPT = redis_scripts.LuaScript(
    """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
if #KEYS == 3 then
  redis.call('LPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
  return redis.call('LLEN', KEYS[3])
end
return 0
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
    args: list[str | int] = [summary, ttl_s]
    if project is not None:
        entry = {
            "sessionId": session_id,
            "question": question,
            "query": query,
            "documents": sorted({str(c["document"]) for c in citations}),
            "atMs": int(time.time() * 1000),
        }
        keys.append(names.project_memory(project))
        args += [json.dumps(entry), project_items]
    items = int(await _REMEMBER_IF_KEPT.run(redis, keys, args))
    if items < 0:
        return MemoryUpdate(0, 0)
    return MemoryUpdate(len(summary), items)
