"""``make run``: the embedded gateway ingests DOCS_DIR at start-up, so a newcomer can ask
chatstream about itself and get a cited answer; greetings are answered without sources."""

from __future__ import annotations

from typing import Any

from shared.settings import ConnectionSettings, RagSettings
from tests.conftest import AUTH, GatewayFactory
from tests.rag.conftest import DOCS_DIR
from tests.support.sse import job_events, parse_sse


def steps(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        e["progress"]["step"]: e["progress"]["metadata"] for e in events if e["type"] == "progress"
    }


async def test_embedded_gateway_answers_from_its_own_docs(
    namespace: str, start_gateway: GatewayFactory
) -> None:
    rag = RagSettings(docs_dir=str(DOCS_DIR))
    gateway = await start_gateway(
        ConnectionSettings(namespace=namespace), rag=rag, worker={"rag": rag}
    )

    listed = await gateway.get("/api/v1/projects/docs/documents", headers=AUTH)
    assert {d["name"] for d in (await listed.json())["documents"]} >= {"rag.md"}

    # The default pipeline is rag and the default project is docs: the request names neither.
    response = await gateway.post(
        "/api/v1/chat/stream",
        json={"text": "Which library does BM25 retrieval use?"},
        headers=AUTH,
    )
    events = job_events(parse_sse(await response.read()))
    end = events[-1]
    assert end["type"] == "end" and end["finishReason"] == "stop"
    assert steps(events)["start"]["pipeline"] == "rag"
    assert "bm25s" in end["content"]
    assert end["citations"][0]["document"] == "rag-collections.md"

    response = await gateway.post("/api/v1/chat/stream", json={"text": "Hello!"}, headers=AUTH)
    events = job_events(parse_sse(await response.read()))
    assert steps(events)["analyzing"]["intent"] == "greeting"
    assert steps(events)["planning"]["retrieve"] is False
    assert events[-1]["citations"] == [] and events[-1]["content"].startswith("Hello")
