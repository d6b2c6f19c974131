"""Two workers on the same collection give the same answer after a document is added through
the API: each keeps its own in-memory index, and each sees the collection's new version."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from shared.amqp import AmqpJobQueue
from shared.names import Names
from shared.settings import ConnectionSettings, RagSettings
from tests.conftest import AUTH, GatewayFactory, worker_settings
from tests.support.sse import job_events, parse_sse
from worker.pipelines.rag import RagPipeline
from worker.worker import Worker

Client = TestClient[web.Request, web.Application]

# The workers answer from alice's own project (the chat route names none).
RAG = RagSettings(default_project="team", public_projects=())
QUESTION = "How long is the deploy freeze before a release?"


async def add(client: Client, name: str, content: str) -> None:
    response = await client.post(
        "/api/v1/projects/team/documents",
        json={"name": name, "content": content, "format": "text"},
        headers=AUTH,
    )
    assert response.status == 201, await response.text()


async def ask_through(
    pipeline: RagPipeline, connections: ConnectionSettings, redis: Redis, client: Client
) -> dict[str, Any]:
    """Run one question with only this worker consuming, so it is the one that answers."""
    assert connections.amqp_url is not None
    queue = AmqpJobQueue(connections.amqp_url, connections.names, timeout_s=2.0)
    queue.start()
    worker = Worker(worker_settings(connections), redis, queue, pipelines={"rag": pipeline})
    await worker.start()
    try:
        response = await client.post(
            "/api/v1/chat/stream", json={"text": QUESTION, "pipeline": "rag"}, headers=AUTH
        )
        assert response.status == 200
        events = job_events(parse_sse(await response.read()))
    finally:
        await worker.close()
    end = events[-1]
    assert end["type"] == "end", end
    execution = next(
        e["progress"]["metadata"]
        for e in events
        if e["type"] == "progress" and e["progress"]["step"] == "execution"
    )
    return {"content": end["content"], "citations": end["citations"], "execution": execution}


async def test_two_workers_agree_after_a_document_is_added_through_the_api(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(real_connections)
    names = Names(real_connections.namespace)
    redis_a = Redis.from_url(str(real_connections.redis_url))
    redis_b = Redis.from_url(str(real_connections.redis_url))
    try:
        worker_a = RagPipeline(RAG, redis_a, names)
        worker_b = RagPipeline(RAG, redis_b, names)
        await add(gateway, "release.txt", "A release is cut every second Tuesday of the month.")

        before_a = await ask_through(worker_a, real_connections, redis_a, gateway)
        before_b = await ask_through(worker_b, real_connections, redis_b, gateway)
        assert before_a["content"] == before_b["content"]
        assert {c["document"] for c in before_a["citations"]} == {"release.txt"}

        await add(
            gateway,
            "freeze.txt",
            "The deploy freeze lasts two days before a release. No deploy happens in the freeze.",
        )

        after_a = await ask_through(worker_a, real_connections, redis_a, gateway)
        after_b = await ask_through(worker_b, real_connections, redis_b, gateway)
    finally:
        await redis_a.aclose()
        await redis_b.aclose()

    assert after_a["content"] == after_b["content"]
    assert after_a["citations"] == after_b["citations"]
    assert after_a["execution"]["indexVersion"] == after_b["execution"]["indexVersion"]
    assert after_a["execution"]["indexVersion"] > before_a["execution"]["indexVersion"]
    assert "freeze.txt" in {c["document"] for c in after_a["citations"]}
    assert "The deploy freeze lasts two days before a release." in after_a["content"]
