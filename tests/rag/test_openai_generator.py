"""The openai generator against a local stand-in model server that replays recorded OpenAI
responses byte for byte (tests/fixtures/openai): what it sends, what it streams, and which
failures it tries again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from launcher.ports import free_port
from shared.events import FINISH_LENGTH, FINISH_STOP
from shared.knowledge import Chunk
from tests.support.openai_upstream import Recording, StandIn
from worker.pipelines.rag.context import Turn
from worker.pipelines.rag.generators import GenerationRequest, Passage, upstream_errors
from worker.pipelines.rag.generators.openai import RETRY_BACKOFF_S, OpenAIGenerator
from worker.pipelines.rag.generators.upstream_errors import UpstreamError

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
        "model": "gpt-4o-mini",
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

    assert tokens.received == Recording.load("stream").tokens()
    assert "".join(tokens.received) == "Workers agree on the index version [1]."
    assert result.finish_reason == FINISH_STOP
    assert [c["chunkId"] for c in result.citations] == ["d1:0"]
    body = stand_in.requests[0]
    assert body["model"] == "gpt-4o-mini" and body["stream"] is True
    # Unset, neither is sent: the model server's defaults apply.
    assert "max_tokens" not in body and "temperature" not in body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "[1] (rag-collections.md)" in body["messages"][0]["content"]
    assert "simple language" in body["messages"][0]["content"]
    assert stand_in.headers[0]["Authorization"] == "Bearer sk-test"


async def test_length_finish_reason_is_reported(standin: tuple[StandIn, TestServer]) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["stream_length"]
    result = await generator(server).generate(REQUEST, Tokens(), no_cancel)
    assert result.finish_reason == FINISH_LENGTH


@pytest.mark.parametrize(
    ("recording", "least_wait_s"),
    [
        ("overloaded", RETRY_BACKOFF_S),
        # The wait its Retry-After asks for.
        (
            "rate_limit_exceeded",
            float(Recording.load("rate_limit_exceeded").headers["retry-after"]),
        ),
    ],
)
async def test_a_failure_before_the_first_token_is_tried_again_after_a_wait(
    standin: tuple[StandIn, TestServer], recording: str, least_wait_s: float
) -> None:
    stand_in, server = standin
    stand_in.scenarios = [recording, "stream"]
    tokens = Tokens()
    result = await generator(server).generate(REQUEST, tokens, no_cancel)
    assert len(stand_in.requests) == 2
    assert tokens.received == Recording.load("stream").tokens() and result.citations
    # A lower bound only: the second request came no sooner than the wait.
    assert stand_in.arrivals[1] - stand_in.arrivals[0] >= least_wait_s


async def test_retries_give_up_with_an_upstream_error(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["overloaded", "overloaded"]
    with pytest.raises(UpstreamError) as caught:
        await generator(server).generate(REQUEST, Tokens(), no_cancel)
    assert caught.value.code == "upstream_error" and len(stand_in.requests) == 2
    assert caught.value.message == (
        "the model server answered 503: The engine is currently overloaded, please try again later"
    )


async def test_an_error_mid_stream_is_an_upstream_error_and_not_retried(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["stream_error_mid"]
    tokens = Tokens()
    with pytest.raises(UpstreamError) as caught:
        await generator(server).generate(REQUEST, tokens, no_cancel)
    assert caught.value.code == "upstream_error"
    assert "The server had an error while processing your request" in caught.value.message
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


async def test_max_tokens_and_temperature_are_sent_when_set(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    await generator(server, max_tokens=256, temperature=0.2).generate(REQUEST, Tokens(), no_cancel)
    assert stand_in.requests[0]["max_tokens"] == 256
    assert stand_in.requests[0]["temperature"] == 0.2


@pytest.mark.parametrize(
    ("recording", "code", "message"),
    [
        (
            "invalid_api_key",
            upstream_errors.UNAUTHORIZED,
            "the model server refused chatstream's credentials (401)",
        ),
        (
            "context_length_exceeded",
            upstream_errors.CONTEXT_TOO_LONG,
            "the question, its sources and the history are too long for the model: This "
            "model's maximum context length is 128000 tokens. However, your messages resulted "
            "in 131072 tokens. Please reduce the length of the messages.",
        ),
        (
            "insufficient_quota",
            upstream_errors.RATE_LIMITED,
            "the model server's quota is used up (429 insufficient_quota)",
        ),
    ],
)
async def test_a_failure_no_attempt_cures_is_not_tried_again(
    standin: tuple[StandIn, TestServer], recording: str, code: str, message: str
) -> None:
    stand_in, server = standin
    stand_in.scenarios = [recording, "stream", "stream"]
    with pytest.raises(UpstreamError) as caught:
        await generator(server, attempts=3).generate(REQUEST, Tokens(), no_cancel)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.retry_after_s is None
    assert len(stand_in.requests) == 1


async def test_a_rate_limit_on_the_last_attempt_says_when_to_try_again(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["rate_limit_exceeded"]
    with pytest.raises(UpstreamError) as caught:
        await generator(server, attempts=1).generate(REQUEST, Tokens(), no_cancel)
    assert caught.value.code == upstream_errors.RATE_LIMITED
    assert (
        caught.value.message
        == "the model server is rate limiting chatstream (429); retry after 1 s"
    )
    assert caught.value.retry_after_s == 1.0


async def test_a_retry_after_beyond_the_longest_wait_is_not_waited_out(
    standin: tuple[StandIn, TestServer],
) -> None:
    stand_in, server = standin
    stand_in.scenarios = ["rate_limit_exceeded", "stream"]
    with pytest.raises(UpstreamError) as caught:
        await generator(server, max_retry_wait_s=0.5).generate(REQUEST, Tokens(), no_cancel)
    assert caught.value.code == upstream_errors.RATE_LIMITED
    assert caught.value.retry_after_s == 1.0
    assert len(stand_in.requests) == 1


async def test_a_model_server_that_is_not_listening_is_unreachable() -> None:
    closed = OpenAIGenerator(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    with pytest.raises(UpstreamError) as caught:
        await closed.generate(REQUEST, Tokens(), no_cancel)
    assert caught.value.code == upstream_errors.UNREACHABLE
    assert caught.value.message == "the model server could not be reached (ClientConnectorError)"
