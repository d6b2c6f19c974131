"""The rag pipeline with the openai generator, through the gateway and a worker on the real
servers: the model's tokens stream to the client, and an upstream error mid-stream becomes an
``error`` event with the ``upstream_error`` code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shared.amqp import AmqpJobQueue
from shared.knowledge import KnowledgeStore
from shared.names import Names
from shared.settings import ConnectionSettings, RagSettings
from tests.conftest import AUTH, GatewayFactory, worker_settings
from tests.rag.openai_standin import StandIn
from tests.support.sse import job_events, parse_sse
from worker.pipelines.rag import RagPipeline
from worker.worker import Worker


async def test_openai_tokens_stream_and_a_mid_stream_error_is_an_error_event(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    aiohttp_server: Callable[..., Any],
    redis: Redis,
    store: KnowledgeStore,
) -> None:
    stand_in = StandIn(scenarios=["ok", "error_mid"])
    server: TestServer = await aiohttp_server(stand_in.app())
    await store.add_document("docs", "agree.md", "Workers agree on the index version.", "text")
    rag = RagSettings(generator="openai", llm_base_url=str(server.make_url("/v1")))
    names = Names(real_connections.namespace)
    assert real_connections.amqp_url is not None
    queue = AmqpJobQueue(real_connections.amqp_url, names, timeout_s=2.0)
    queue.start()
    worker = Worker(
        worker_settings(real_connections),
        redis,
        queue,
        pipelines={"rag": RagPipeline(rag, redis, names)},
    )
    await worker.start()
    gateway = await start_gateway(real_connections)
    try:
        replies = []
        for _ in range(2):
            response = await gateway.post(
                "/api/v1/chat/stream",
                json={"text": "How do workers agree?", "pipeline": "rag"},
                headers=AUTH,
            )
            replies.append(job_events(parse_sse(await response.read())))
    finally:
        await worker.close()

    ok, failed = replies
    assert [e["content"] for e in ok if e["type"] == "token"] == stand_in.words
    assert ok[-1]["type"] == "end" and ok[-1]["content"] == "Workers agree [1]."
    assert [c["document"] for c in ok[-1]["citations"]] == ["agree.md"]
    assert "[1] (agree.md)" in stand_in.requests[0]["messages"][0]["content"]

    assert [e["content"] for e in failed if e["type"] == "token"] == ["Workers", " agree"]
    assert failed[-1]["type"] == "error" and failed[-1]["code"] == "upstream_error"
    assert "end" not in {e["type"] for e in failed}
