"""A real answer's citations, in its ``end`` event and on its stored message, have the one shape
the contract gives them (docs/api.md, "Citations") and the OpenAPI document declares."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson

from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, WorkerFactory
from tests.support.sse import job_events, parse_sse

DOCUMENT = (
    "# Release rules\n\nThe deploy freeze starts two days before a release. "
    "Hotfixes during the freeze need two approvals."
)
CITATION_FIELDS = {"id", "project", "documentId", "document", "chunkId", "score", "quotes"}


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """``schema`` checked with the document's components in reach of its references."""
    root = {**schema, "components": document["components"]}
    cls = jsonschema.validators.validator_for(root)
    return cls(root)


async def test_the_end_event_and_the_stored_message_carry_documented_citations(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
) -> None:
    gateway = await start_gateway(real_connections)
    await start_worker(real_connections)
    added = await gateway.post(
        "/api/v1/projects/rules/documents",
        json={"name": "release.md", "content": DOCUMENT},
        headers=AUTH,
    )
    assert added.status == 201, await added.text()
    document_id = (await added.json())["id"]

    response = await gateway.post(
        "/api/v1/projects/rules/chat-stream",
        json={"message": "When does the deploy freeze start?", "pipeline": "rag"},
        headers=AUTH,
    )
    assert response.status == 200, await response.text()
    messages = parse_sse(await response.read())
    end = job_events(messages)[-1]
    assert end["type"] == "end"
    citations = end["citations"]
    assert citations, end
    for cited in citations:
        assert set(cited) == CITATION_FIELDS
        assert cited["project"] == "rules" and cited["document"] == "release.md"
        assert cited["documentId"] == document_id
        assert f"[{cited['id']}]" in end["content"]
        assert all(isinstance(q, str) for q in cited["quotes"]) and cited["quotes"]

    openapi = await (await gateway.get("/api/v1/openapi.json")).json()
    stream_schema = openapi["paths"]["/api/v1/projects/{project}/chat-stream"]["post"]["responses"][
        "200"
    ]["content"]["text/event-stream"]["schema"]
    event_schema = validator(openapi, stream_schema["properties"]["data"]["contentSchema"])
    event_schema.validate(end)
    # The schema holds the citation's shape, not only that the field is there.
    broken = {**end, "citations": [{**citations[0], "quotes": "not a list"}]}
    assert not event_schema.is_valid(broken)

    session_id = response.headers["X-Session-Id"]
    stored = await gateway.get(f"/api/v1/sessions/{session_id}/messages", headers=AUTH)
    body = orjson.loads(await stored.read())
    assert body["messages"][-1]["citations"] == citations
    list_schema = validator(openapi, {"$ref": "#/components/schemas/MessageList"})
    list_schema.validate(body)
    broken_body = {"messages": [{**body["messages"][-1], "citations": [{"id": 1}]}]}
    assert not list_schema.is_valid(broken_body)
