"""The openai generator against a local stand-in speaking the OpenAI streaming wire format."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from shared.events import FINISH_LENGTH, FINISH_STOP
from shared.knowledge import Chunk
from tests.rag.openai_standin import StandIn
from worker.pipelines import PipelineError
from worker.pipelines.rag.context import Turn
from worker.pipelines.rag.generators import GenerationRequest, Passage
from worker.pipelines.rag.generators.openai import OpenAIGenerator

REQUEST = GenerationRequest(
    question="How do workers agree?",
    query="How do workers agree?",
    passages=[
        Passage(1, "docs", Chunk("d1:0", "d1", "rag-collections.md", 0, "Workers agree."), 2.5),
        Passage(2, "docs", Chunk("d2:0", "d2", "rag.md", 0, "Other text."), 1.0),
    ],
    history=[Turn("user", "Hi"), Turn("assistant", "Hello!")],
    simple_language=True,
)


@pytest.fixture
async def standin(aiohttp_server: Callable[..., Any]) -> tuple[StandIn, TestServer]:
    stand_in = StandIn()
    server: TestServer = await aiohttp_server(stand_in.app())
    return stand_in, server


def generator(server: TestServer, **overrides: Any) -> OpenAIGenerator:
    settings: dict[str, Any] = {
        "base_url": str(server.make_url("/v1")),
        "model": "standin-model",
        "api_key": "sk-test",
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "attempts": 2,
    }
    return OpenAIGenerator(**(settings | overrides))


async def no_cancel() -> None:
    return None


class Tokens:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.first = asyncio.Event()

    async def __call__(self, text: str) -> None:
        self.received.append(text)
        self.first.set()


async def test_streams_tokens_and_cites_the_passages_it_names(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    tokens = Tokens()
    result = await generator(server).generate(REQUEST, tokens, no_cancel)

    assert tokens.received == ["Workers", " agree", " [1]", "."]
    assert result.finish_reason == FINISH_STOP
    assert [c["chunkId"] for c in result.citations] == ["d1:0"]
    body = stand_in.requests[0]
    assert body["model"] == "standin-model" and body["stream"] is True
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "[1] (rag-collections.md)" in body["messages"][0]["content"]
    assert "simple language" in body["messages"][0]["content"]
    assert stand_in.headers[0]["Authorization"] == "Bearer sk-test"


async def test_length_finish_reason_is_reported(standin: tuple[StandIn, TestServer]) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["length"]
    result = await generator(server).generate(REQUEST, Tokens(), no_cancel)
    assert result.finish_reason == FINISH_LENGTH


async def test_a_failure_before_the_first_token_is_retried(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["unavailable", "ok"]
    tokens = Tokens()
    result = await generator(server).generate(REQUEST, tokens, no_cancel)
    assert len(stand_in.requests) == 2
    assert "".join(tokens.received) == "Workers agree [1]." and result.citations


async def test_retries_give_up_with_an_upstream_error(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["unavailable", "unavailable"]
    with pytest.raises(PipelineError) as caught:
        await generator(server).generate(REQUEST, Tokens(), no_cancel)
    assert caught.value.code == "upstream_error" and len(stand_in.requests) == 2


async def test_an_error_mid_stream_is_an_upstream_error_and_not_retried(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["error_mid"]
    tokens = Tokens()
    with pytest.raises(PipelineError) as caught:
        await generator(server).generate(REQUEST, tokens, no_cancel)
    assert caught.value.code == "upstream_error"
    assert "the model crashed" in caught.value.message
    assert tokens.received == ["Workers", " agree"]
    assert len(stand_in.requests) == 1


async def test_a_client_cancel_closes_the_upstream_connection(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["hang"]
    tokens = Tokens()
    task = asyncio.create_task(generator(server).generate(REQUEST, tokens, no_cancel))
    await asyncio.wait_for(tokens.first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The stand-in itself sees its request's connection go away.
    await asyncio.wait_for(stand_in.disconnected.wait(), 10)
    assert stand_in.disconnected.is_set()


class JobCancelled(Exception):
    """What a cancelled job's checkpoint raises."""


async def test_a_cancel_while_the_model_is_silent_closes_the_upstream_connection(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["silent"]
    polled = asyncio.Event()
    cancelled = False

    async def checkpoint() -> None:
        polled.set()
        if cancelled:
            raise JobCancelled

    task = asyncio.create_task(generator(server).generate(REQUEST, Tokens(), checkpoint))
    # No token will come: the generator still polls the checkpoint while it waits.
    await asyncio.wait_for(polled.wait(), 10)
    cancelled = True
    with pytest.raises(JobCancelled):
        await asyncio.wait_for(task, 10)
    await asyncio.wait_for(stand_in.disconnected.wait(), 10)
    assert len(stand_in.requests) == 1
