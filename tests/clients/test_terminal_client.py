"""``chatstream chat`` and ``chatstream sessions``, run as the real command against a gateway on
the real servers; the cut is made by a TCP proxy that resets the connection mid-answer."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from tests.clients.conftest import LiveGateway
from tests.clients.cut_proxy import CutProxy
from tests.clients.routes import RESUME, SESSIONS, require_routes
from tests.conftest import API_KEY, AUTH

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "why   does a stream\nresume where it stopped after the network drops it"
ANSWER = " ".join(QUESTION.split())
COMMAND_TIMEOUT_S = 60


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
