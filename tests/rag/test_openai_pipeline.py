"""The rag pipeline with the openai generator, through the gateway and a worker on the real
servers, against a stand-in model server that replays recorded OpenAI responses: the model's
tokens stream to the client, and each failure of the model server reaches the client as an
``error`` event that says what went wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from launcher.ports import free_port
from shared.amqp import AmqpJobQueue
from shared.knowledge import KnowledgeStore
from shared.names import Names
from shared.settings import ConnectionSettings, RagSettings
from tests.conftest import AUTH, GatewayFactory, worker_settings
from tests.support.openai_upstream import Recording, StandIn
from tests.support.sse import job_events, parse_sse
from worker.pipelines import Pipeline
from worker.pipelines.rag import RagPipeline
from worker.worker import Worker

QUESTION = {"text": "How do workers agree?", "pipeline": "rag"}
Gateway = TestClient[web.Request, web.Application]


ModelStack = Callable[[RagSettings], AbstractAsyncContextManager[Gateway]]


@pytest.fixture
async def model_stack(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    redis: Redis,
    store: KnowledgeStore,
) -> ModelStack:
    """Starts a gateway and a real worker whose rag pipeline asks the model server of the
    settings given, over a project that holds one document."""
    await store.add_document("docs", "agree.md", "Workers agree on the index version.", "text")
    names = Names(real_connections.namespace)
    assert real_connections.amqp_url is not None
    amqp_url = real_connections.amqp_url

    @asynccontextmanager
    async def start(rag: RagSettings) -> AsyncIterator[Gateway]:
        queue = AmqpJobQueue(amqp_url, names, timeout_s=2.0)
        queue.start()
        pipelines: dict[str, Pipeline] = {"rag": RagPipeline(rag, redis, names)}
        worker = Worker(worker_settings(real_connections), redis, queue, pipelines=pipelines)
        await worker.start()
        try:
            yield await start_gateway(real_connections)
        finally:
            await worker.close()

    return start


async def ask(gateway: Gateway) -> list[dict[str, Any]]:
    response = await gateway.post("/api/v1/chat/stream", json=QUESTION, headers=AUTH)
    return job_events(parse_sse(await response.read()))


def model_at(url: str, **overrides: Any) -> RagSettings:
    return RagSettings(generator="openai", llm_base_url=url, llm_model="gpt-4o-mini", **overrides)


async def test_openai_tokens_stream_and_a_mid_stream_error_is_an_error_event(
    model_stack: ModelStack,
    aiohttp_server: Callable[..., Any],
) -> None:
    stand_in = StandIn(scenarios=["stream", "stream_error_mid"])
    server: TestServer = await aiohttp_server(stand_in.app())
    rag = model_at(str(server.make_url("/v1")))
    async with model_stack(rag) as gateway:
        ok = await ask(gateway)
        failed = await ask(gateway)

    assert [e["content"] for e in ok if e["type"] == "token"] == Recording.load("stream").tokens()
    assert ok[-1]["type"] == "end"
    assert ok[-1]["content"] == "Workers agree on the index version [1]."
    assert [c["document"] for c in ok[-1]["citations"]] == ["agree.md"]
    assert "[1] (agree.md)" in stand_in.requests[0]["messages"][0]["content"]

    assert [e["content"] for e in failed if e["type"] == "token"] == ["Workers", " agree"]
    assert failed[-1]["type"] == "error" and failed[-1]["code"] == "upstream_error"
    assert "end" not in {e["type"] for e in failed}


# Each recorded failure, the error event the client gets for it, and how many requests the
# worker made with LLM_ATTEMPTS=2: a failure no attempt cures is not tried again.
FAILURES = [
    (
        "invalid_api_key",
        {
            "code": "upstream_unauthorized",
            "error": "the model server refused chatstream's credentials (401)",
        },
        1,
    ),
    (
        "context_length_exceeded",
        {
            "code": "upstream_context_too_long",
            "error": "the question, its sources and the history are too long for the model: "
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 131072 tokens. Please reduce the length of the messages.",
        },
        1,
    ),
    (
        "rate_limit_exceeded",
        {
            "code": "upstream_rate_limited",
            "error": "the model server is rate limiting chatstream (429); retry after 1 s",
            "retryAfterMs": 1000,
        },
        2,
    ),
]


@pytest.mark.parametrize(("recording", "error", "requests"), FAILURES)
async def test_a_model_server_failure_is_an_error_event_that_says_what_went_wrong(
    model_stack: ModelStack,
    aiohttp_server: Callable[..., Any],
    recording: str,
    error: dict[str, Any],
    requests: int,
) -> None:
    stand_in = StandIn(scenarios=[recording] * 2)
    server: TestServer = await aiohttp_server(stand_in.app())
    rag = model_at(str(server.make_url("/v1")), llm_attempts=2)
    async with model_stack(rag) as gateway:
        events = await ask(gateway)

    assert events[-1] == {"type": "error", **error}
    assert [e["type"] for e in events if e["type"] in ("token", "end")] == []
    assert len(stand_in.requests) == requests
    # The model server's own message names the key's prefix or the organisation: the client
    # never sees it.
    upstream_message = Recording.load(recording).json()["error"]["message"]
    if recording != "context_length_exceeded":
        assert upstream_message not in events[-1]["error"]


async def test_a_model_server_that_is_down_is_an_unreachable_error_event(
    model_stack: ModelStack,
) -> None:
    rag = model_at(f"http://127.0.0.1:{free_port()}/v1")
    async with model_stack(rag) as gateway:
        events = await ask(gateway)

    assert events[-1] == {
        "type": "error",
        "code": "upstream_unreachable",
        "error": "the model server could not be reached (ClientConnectorError)",
    }
