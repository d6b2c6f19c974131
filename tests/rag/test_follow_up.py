"""A follow-up ("and how do I stop it?") is rewritten with the session's history and retrieves
the document about what "it" was; without that history the same words find another one."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from shared.knowledge import KnowledgeStore
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, WorkerFactory
from tests.support.chat import create_session
from tests.support.sse import job_events, parse_sse
from worker.pipelines.rag.analysis import FOLLOW_UP, NEW_QUESTION, analyze
from worker.pipelines.rag.context import Turn

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


async def ask(client: Client, text: str, session_id: str) -> dict[str, dict[str, Any]]:
    response = await client.post(
        f"/api/v1/sessions/{session_id}/messages/stream",
        json={"content": text, "pipeline": "rag"},
        headers=AUTH,
    )
    assert response.status == 200, await response.text()
    events = job_events(parse_sse(await response.read()))
    assert events[-1]["type"] == "end", events[-1]
    return {
        e["progress"]["step"]: e["progress"]["metadata"] for e in events if e["type"] == "progress"
    }


async def test_follow_up_is_rewritten_with_history_and_retrieves_the_right_document(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    store: KnowledgeStore,
) -> None:
    for name, content in DOCUMENTS.items():
        await store.add_document("docs", name, content, "markdown")
    gateway = await start_gateway(real_connections)
    await start_worker(real_connections)
    session = await create_session(gateway)
    first = await ask(gateway, "How do I start a worker?", session)
    assert first["execution"]["retrieved"][0]["document"] == "worker.md"

    steps = await ask(gateway, "and how do I stop it?", session)

    assert steps["context"]["messages"] == 2
    assert steps["analyzing"]["intent"] == FOLLOW_UP and steps["analyzing"]["rewritten"] is True
    assert "worker" in steps["analyzing"]["query"]
    assert steps["execution"]["retrieved"][0]["document"] == "worker.md"

    # The same words with no history are a new question, and find the stop button instead.
    alone = await ask(gateway, "and how do I stop it?", await create_session(gateway))
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
