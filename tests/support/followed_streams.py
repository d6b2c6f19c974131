"""A job's stream read to its end as a client reads it through a server's failover: resuming
with ``Last-Event-ID`` after an ``unavailable`` error, a dropped connection or a 503."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import AUTH
from tests.support.sse import SseMessage, iter_sse

# Resumes a stream may need while a server changes hands.
MAX_RESUMES = 50


async def read_numbered(
    response: aiohttp.ClientResponse, until_seq: int | None = None
) -> list[SseMessage]:
    """The numbered events and the final error of one connection."""
    seen: list[SseMessage] = []
    async for message in iter_sse(response):
        if message.type == "error":
            seen.append(message)
            break
        if message.id is None:
            continue
        seen.append(message)
        if message.type == "end" or (until_seq is not None and int(message.id) >= until_seq):
            break
    return seen


async def follow_to_end(
    http: aiohttp.ClientSession,
    url: str,
    job_id: str,
    response: aiohttp.ClientResponse,
    seen: list[SseMessage],
) -> list[SseMessage]:
    """The rest of the stream after ``seen``, resuming until its ``end``."""
    rest = await read_numbered(response)
    for _ in range(MAX_RESUMES):
        if rest and rest[-1].type == "end":
            return rest
        if rest and rest[-1].type == "error":
            assert rest[-1].json["code"] == "unavailable", rest[-1].json
            rest = rest[:-1]
        numbered = seen + rest
        last = next((m.id for m in reversed(numbered) if m.id is not None), "0")
        await asyncio.sleep(0.2)
        resumed = await http.get(
            f"{url}/api/v1/streams/{job_id}",
            headers={**AUTH, "Last-Event-ID": str(last)},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        if resumed.status == 503:
            resumed.close()
            continue
        assert resumed.status == 200, await resumed.text()
        rest += await read_numbered(resumed)
    raise AssertionError(f"stream {job_id} did not end after {MAX_RESUMES} resumes")


def assert_whole(seen: list[SseMessage], text: str) -> None:
    """Every seq once and in order, or a ``reset`` after which a fresh copy ends the stream;
    its ``end`` carries the whole ``text``."""
    types = [m.type for m in seen]
    assert types and types[-1] == "end", types
    assert seen[-1].json["content"] == text
    if "reset" in types:
        return
    seqs = [int(m.id or 0) for m in seen]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
