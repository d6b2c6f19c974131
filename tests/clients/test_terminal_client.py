"""``chatstream chat`` and ``chatstream sessions``, run as the real command against a gateway on
the real servers; the cut is made by a TCP proxy that resets the connection mid-answer."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from tests.clients.conftest import LiveGateway
from tests.clients.cut_proxy import CutProxy
from tests.clients.documents import RULES, RULES_QUESTION, add_rules
from tests.clients.routes import RESUME, SESSIONS, require_routes
from tests.conftest import API_KEY, AUTH

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "why   does a stream\nresume where it stopped after the network drops it"
ANSWER = " ".join(QUESTION.split())
COMMAND_TIMEOUT_S = 60
SESSION_LINE = re.compile(r"^session: (\S+)$", re.MULTILINE)


def chatstream_command() -> list[str]:
    script = Path(sys.executable).parent / "chatstream"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli import main; main()"]


async def run_cli(base_url: str, *args: str, api_key: str = API_KEY) -> tuple[int, str, str]:
    env = {**os.environ, "CHATSTREAM_URL": base_url, "CHATSTREAM_API_KEY": api_key}
    process = await asyncio.create_subprocess_exec(
        *chatstream_command(),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_chat_prints_the_streamed_answer_and_the_progress(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway(token_delay_ms=0)
    code, out, err = await run_cli(base_url, "chat", QUESTION, "--pipeline", "echo")
    assert code == 0, err
    assert out == ANSWER + "\n"
    # Not a terminal, so the progress line writes one line per step, in the contract's order.
    assert "[1/8] starting…" in err.splitlines()
    assert "[2/8] reading context…" in err.splitlines()


def session_of(err: str) -> str:
    found = SESSION_LINE.findall(err)
    assert len(found) == 1, err
    return str(found[0])


async def test_chat_names_its_session_and_continues_it_with_session(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=0)
    code, _, err = await run_cli(base_url, "chat", "first question", "--pipeline", "echo")
    assert code == 0, err
    session_id = session_of(err)
    assert uuid.UUID(session_id)

    code, out, err = await run_cli(
        base_url, "chat", "second question", "--session", session_id, "--pipeline", "echo"
    )
    assert code == 0, err
    assert out == "second question\n" and session_of(err) == session_id
    async with aiohttp.ClientSession(headers=AUTH) as session:
        url = f"{base_url}/api/v1/sessions/{session_id}/messages"
        async with session.get(url) as response:
            messages = (await response.json())["messages"]
    assert [m["content"] for m in messages] == [
        "first question",
        "first question",
        "second question",
        "second question",
    ]


async def test_chat_asks_a_project_and_lists_the_sources_after_the_answer(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=0)
    await add_rules(base_url)

    code, out, err = await run_cli(
        base_url,
        "chat",
        RULES_QUESTION,
        "--project",
        "rules",
        "--pipeline",
        "rag",
    )
    assert code == 0, err
    answer, sources = out.split("\n\nSources:\n")
    heading, *quotes = sources.splitlines()
    assert heading == "[1] release.md"
    assert quotes, sources
    for line in quotes:
        assert line.startswith('    "') and line.endswith('"'), line
        # Each quote is the document's own words, and the answer cites it with its marker.
        assert line[5:-1] in RULES and f"{line[5:-1]} [1]" in answer
    assert uuid.UUID(session_of(err))


async def test_chat_refuses_a_project_that_is_not_there(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway()
    code, out, err = await run_cli(base_url, "chat", "hello", "--project", "nobodys")
    assert code == 1 and out == ""
    assert "(not_found)" in err


async def test_chat_prints_the_whole_answer_once_after_the_connection_is_cut(
    live_gateway: LiveGateway, cut_proxy: Callable[[str], Awaitable[CutProxy]]
) -> None:
    base_url = await live_gateway(token_delay_ms=80)
    await require_routes(base_url, RESUME)
    proxy = await cut_proxy(base_url)
    code, out, err = await run_cli(proxy.url, "chat", QUESTION)
    assert code == 0, err
    assert proxy.cuts == 1
    assert out == ANSWER + "\n"
    assert "reconnecting" in err
    resumes = proxy.requests_for("/api/v1/streams/")
    assert resumes, proxy.request_heads
    assert b"\r\nlast-event-id: " in resumes[0].lower()


async def test_chat_reports_a_refused_key_and_exits_non_zero(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway()
    code, out, err = await run_cli(base_url, "chat", "hello", api_key="not-a-key")
    assert code == 1
    assert out == ""
    assert "(unauthorized)" in err


async def test_sessions_lists_the_callers_sessions(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway()
    await require_routes(base_url, SESSIONS)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for title in ("first trip", "second trip"):
            async with session.post(f"{base_url}/api/v1/sessions", json={"title": title}) as r:
                assert r.status == 201, await r.text()
    code, out, err = await run_cli(base_url, "sessions")
    assert code == 0, err
    titles = [line.split("  ")[-1].strip() for line in out.splitlines()]
    # Most recently updated first.
    assert titles[:2] == ["second trip", "first trip"]
