"""The OpenAPI document: served without a token, and true to the app's routes both ways."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.openapi import REF_TEMPLATE, SKIPPED_METHODS, build_document
from gateway.routes.batch import BatchBody
from gateway.schemas import ChatStreamBody, CreateSessionBody
from shared.settings import ConnectionSettings
from tests.conftest import GatewayFactory, gateway_settings

Client = TestClient[web.Request, web.Application]


def registered_operations(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method not in SKIPPED_METHODS and route.resource is not None
    }


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


async def fetch_document(client: Client) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


async def test_every_route_is_documented_and_every_operation_is_a_route(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    for origins in ((), ("https://app.example.test",)):
        client = await start_gateway(connections, cors_origins=origins)
        document = await fetch_document(client)
        assert documented_operations(document) == registered_operations(client.app)
        undocumented = [
            (path, method)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if operation.get("x-undocumented")
        ]
        assert undocumented == []
        assert ("post", "/api/v1/batch") in documented_operations(document)
        assert ("post", "/v1/chat/completions") in documented_operations(document)
        assert ("get", "/api/v1/openapi.json") in documented_operations(document)


def test_a_route_nobody_described_shows_up_as_undocumented() -> None:
    app = create_app(gateway_settings(ConnectionSettings(namespace="unused")))

    async def secret(_: web.Request) -> web.Response:
        return web.Response()

    app.router.add_post("/api/v1/secret", secret)
    document = build_document(app)
    assert document["paths"]["/api/v1/secret"]["post"]["x-undocumented"] is True


async def test_bodies_come_from_the_pydantic_models(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    document = await fetch_document(await start_gateway(connections))
    schemas = document["components"]["schemas"]
    for model in (CreateSessionBody, ChatStreamBody, BatchBody):
        expected = model.model_json_schema(ref_template=REF_TEMPLATE)
        expected.pop("$defs", None)
        assert schemas[model.__name__] == expected
    body = document["paths"]["/api/v1/sessions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateSessionBody"
    }


async def test_security_errors_and_streams_are_described(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    document = await fetch_document(await start_gateway(connections))
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearer": []}]
    paths = document["paths"]
    for public in ("/healthz", "/readyz", "/api/v1/openapi.json"):
        assert paths[public]["get"]["security"] == []
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    create = paths["/api/v1/sessions"]["post"]["responses"]
    assert {"200", "201", "400", "401", "409", "413", "415", "422", "429", "503"} <= set(create)
    assert create["429"]["headers"]["Retry-After"]["required"] is True
    for path in (
        "/api/v1/chat/stream",
        "/api/v1/sessions/{session_id}/messages/stream",
        "/api/v1/projects/{project}/chat-stream",
    ):
        assert set(paths[path]["post"]["responses"]["200"]["content"]) == {"text/event-stream"}
    for path in ("/api/v1/question/stream", "/api/v1/streams/{job_id}"):
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}
    completions = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert set(completions) == {"application/json", "text/event-stream"}
    assert [p["name"] for p in paths["/api/v1/question/stream"]["get"]["parameters"]] == [
        "pipeline",
        "question",
        "session_id",
        "simple_language",
    ]


async def test_links_lead_from_what_is_created_to_what_reads_it(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    document = await fetch_document(await start_gateway(connections))
    paths = document["paths"]
    by_id = {
        operation["operationId"]: path
        for path, item in paths.items()
        for operation in item.values()
    }
    for prefix in ("/api/v1/sessions", "/api/sessions"):
        created = paths[prefix]["post"]["responses"]["201"]["links"]
        assert set(created) == {
            "GetSession",
            "RenameSession",
            "ListMessages",
            "SendMessage",
            "DeleteSession",
        }
        # Each link stays on the prefix the session was created on.
        assert all(by_id[link["operationId"]].startswith(prefix) for link in created.values())
    ticket = paths["/api/v1/stream-tickets"]["post"]["responses"]["201"]["links"]
    assert by_id[ticket["AttachWithTicket"]["operationId"]] == "/api/v1/streams/{job_id}"
    stream = paths["/api/v1/chat/stream"]["post"]["responses"]["200"]["links"]
    assert stream["CreateTicket"]["requestBody"] == {"jobId": "$response.header.X-Job-Id"}
    for item in paths.values():
        for operation in item.values():
            for reply in operation["responses"].values():
                for link in reply.get("links", {}).values():
                    target = by_id[link["operationId"]]
                    for parameter in link.get("parameters", {}):
                        where, name = parameter.split(".")
                        assert where != "path" or "{" + name + "}" in target, (target, name)
