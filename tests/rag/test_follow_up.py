"""A follow-up ("and how do I stop it?") is rewritten with the session's history and retrieves
the document about what "it" was; without that history the same words find another one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from shared.amqp import AmqpJobQueue
from shared.knowledge import KnowledgeStore
from shared.names import Names
from shared.settings import ConnectionSettings, RagSettings
from tests.conftest import AUTH, GatewayFactory, worker_settings
from tests.support.sse import data_events, parse_sse
from worker.pipelines.echo import EchoPipeline
from worker.pipelines.rag import RagPipeline
from worker.pipelines.rag.analysis import FOLLOW_UP, NEW_QUESTION, analyze
from worker.pipelines.rag.context import Turn
from worker.worker import Worker

Client = TestClient[web.Request, web.Application]

DOCUMENTS = {
    "worker.md": "# Running a worker\n\nStart a worker with `python -m worker`; it connects to "
    "RabbitMQ and consumes jobs. To stop a worker, send it SIGTERM: it finishes its running "
    "jobs within the grace period, then exits.",
    "streams.md": "# The stop button\n\nA client's stop button calls the cancel route. To stop "
    "a stream, POST to its cancel route; the stream stops and ends with finishReason "
    "cancelled. Stopping twice is fine.",
    "gateway.md": "# The gateway\n\nThe gateway serves HTTP and relays each job's events to "
    "its client as Server-Sent Events.",
}


class RedisHistory:
    """The test's own session history, kept in a Redis list of JSON [role, content] pairs."""

    def __init__(self, redis: Redis, names: Names) -> None:
        self._redis = redis
        self._names = names

    def key(self, session_id: str) -> str:
        return f"{self._names.namespace}:test-history:{session_id}"

    async def add(self, session_id: str, role: str, content: str) -> None:
        await self._redis.rpush(self.key(session_id), json.dumps([role, content]))

    async def recent(self, session_id: str, limit: int) -> list[tuple[str, str]]:
        raw = await self._redis.lrange(self.key(session_id), -limit, -1)
        return [(role, content) for role, content in map(json.loads, raw)]


@pytest.fixture
async def rag_worker(
    real_connections: ConnectionSettings, redis: Redis
) -> AsyncIterator[RedisHistory]:
    names = Names(real_connections.namespace)
    history = RedisHistory(redis, names)
    pipeline = RagPipeline(RagSettings(), redis, names, history=history)
    assert real_connections.amqp_url is not None
    queue = AmqpJobQueue(real_connections.amqp_url, names, timeout_s=2.0)
    queue.start()
    worker = Worker(
        worker_settings(real_connections),
        redis,
        queue,
        pipelines={"rag": pipeline, "echo": EchoPipeline(token_delay_ms=0)},
    )
    await worker.start()
    yield history
    await worker.close()


async def ask(client: Client, text: str, session_id: str) -> dict[str, dict[str, Any]]:
    response = await client.post(
        "/api/v1/chat/stream",
        json={"text": text, "pipeline": "rag", "conversation_id": session_id},
        headers=AUTH,
    )
    assert response.status == 200, await response.text()
    events = data_events(parse_sse(await response.read()))
    assert events[-1]["type"] == "end", events[-1]
    return {
        e["progress"]["step"]: e["progress"]["metadata"] for e in events if e["type"] == "progress"
    }


async def test_follow_up_is_rewritten_with_history_and_retrieves_the_right_document(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    rag_worker: RedisHistory,
    store: KnowledgeStore,
) -> None:
    for name, content in DOCUMENTS.items():
        await store.add_document("docs", name, content, "markdown")
    gateway = await start_gateway(real_connections)
    await rag_worker.add("s-follow", "user", "How do I start a worker?")
    await rag_worker.add("s-follow", "assistant", "Start a worker with python -m worker. [1]")

    steps = await ask(gateway, "and how do I stop it?", "s-follow")

    assert steps["context"]["messages"] == 2
    assert steps["analyzing"]["intent"] == FOLLOW_UP and steps["analyzing"]["rewritten"] is True
    assert "worker" in steps["analyzing"]["query"]
    assert steps["execution"]["retrieved"][0]["document"] == "worker.md"

    # The same words with no history are a new question, and find the stop button instead.
    alone = await ask(gateway, "and how do I stop it?", "s-alone")
    assert alone["analyzing"]["intent"] == NEW_QUESTION
    assert alone["execution"]["retrieved"][0]["document"] == "streams.md"


def test_analysis_rewrites_only_messages_that_lean_on_a_previous_question() -> None:
    history = [Turn("user", "How do I start the stack?"), Turn("assistant", "Run make stack.")]
    follow = analyze("and how do I stop it?", history)
    assert follow.intent == FOLLOW_UP and "start stack" in follow.query
    assert analyze("What does the memory step update?", history).intent == NEW_QUESTION
    assert analyze("and how do I stop it?", []).intent == NEW_QUESTION
    assert analyze("Hello there!", history).intent == "greeting"
    assert analyze("thanks", history).intent == "chitchat"
