"""A job's stream read to its end as a client reads it through a server's failover: resuming
with ``Last-Event-ID`` after an ``unavailable`` error, a dropped connection or a 503."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import AUTH
from tests.support.sse import SseMessage, iter_sse

# Resumes a stream may need while a server changes hands.
MAX_RESUMES = 50
# How long a stream read through a failover may take: far above its few seconds of tokens and
# a failover's few seconds, so that only a stream that hangs runs out.
STREAM_TIMEOUT_S = 30


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
            timeout=aiohttp.ClientTimeout(total=STREAM_TIMEOUT_S),
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


async def post_chat(http: aiohttp.ClientSession, url: str, text: str) -> aiohttp.ClientResponse:
    """An echo chat's stream, opened (whatever its status)."""
    return await http.post(
        f"{url}/api/v1/chat/stream",
        json={"text": text, "pipeline": "echo"},
        headers=AUTH,
        timeout=aiohttp.ClientTimeout(total=STREAM_TIMEOUT_S),
    )


async def start_chat(
    http: aiohttp.ClientSession, url: str, text: str
) -> tuple[str, aiohttp.ClientResponse]:
    """An echo chat's job id and its stream, which must have opened."""
    response = await post_chat(http, url, text)
    assert response.status == 200, await response.text()
    return response.headers["X-Job-Id"], response


async def assert_service_back(http: aiohttp.ClientSession, url: str, text: str) -> None:
    """Service is back without a restart: a new chat streams to its end."""
    for _ in range(200):
        after = await post_chat(http, url, text)
        if after.status == 200:
            break
        after.close()
        await asyncio.sleep(0.1)
    assert after.status == 200
    assert [m.type async for m in iter_sse(after) if m.id][-1] == "end"


async def assert_outage_survived(
    http: aiohttp.ClientSession,
    url: str,
    opened: list[tuple[str, aiohttp.ClientResponse]],
    firsts: list[list[SseMessage]],
    text: str,
) -> None:
    """Right after a server was lost under the ``opened`` streams (of which ``firsts`` was
    read): a new request gets 503 with Retry-After, or succeeds; every stream completes whole;
    and service comes back by itself."""
    during = await post_chat(http, url, text)
    assert during.status in (200, 503), await during.text()
    if during.status == 503:
        assert during.headers.get("Retry-After")
    during.close()
    for (job_id, response), first in zip(opened, firsts, strict=True):
        seen = first + await follow_to_end(http, url, job_id, response, first)
        assert_whole(seen, text)
    await assert_service_back(http, url, text)
