"""The Python examples of docs/clients.md are the files in clients/python/examples/, word for
word, and each runs against a live gateway as a reader would run it."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from tests.clients.conftest import LiveGateway
from tests.clients.documents import RULES, RULES_QUESTION, add_rules
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "clients/python/examples"
RUN_TIMEOUT_S = 60


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, re.MULTILINE | re.DOTALL)


def test_the_docs_show_each_example_as_it_is() -> None:
    blocks = python_blocks((ROOT / "docs/clients.md").read_text())
    examples = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.py"))}
    assert sorted(blocks) == sorted(examples.values()), "docs/clients.md and the examples differ"


async def run_example(base_url: str, name: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        *args,
        env={**os.environ, "CHATSTREAM_URL": base_url, "CHATSTREAM_API_KEY": API_KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_ask_prints_the_answer_its_sources_and_its_session(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=0, default_pipeline="rag")
    await add_rules(base_url)

    out = await run_example(base_url, "ask.py", RULES_QUESTION, "rules")
    lines = out.splitlines()
    assert "[1]" in lines[0]
    assert lines[1] == "[1] release.md"
    assert lines[2].strip() in RULES
    assert re.fullmatch(r"session: [0-9a-f-]{36}", lines[-1])


async def test_conversation_streams_stops_and_replays_with_a_ticket(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=50)
    out = await run_example(base_url, "conversation.py")
    lines = out.splitlines()
    assert lines[0] == "What should I see in Lisbon?"
    assert lines[1] == "(6 tokens)"
    assert lines[2] in {"second answer: cancelled", "second answer: stop"}
    assert lines[3] == "replayed: What should I see in Lisbon?"
    assert lines[4:] == [
        "user: complete",
        "assistant: complete",
        "user: complete",
        f"assistant: {lines[2].rsplit(' ', 1)[1].replace('stop', 'complete')}",
    ]
