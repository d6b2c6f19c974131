"""The documents API: add, list, delete, and who may do each (docs/api.md: another's is 404)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from shared.settings import ConnectionSettings
from tests.conftest import AUTH, OTHER_AUTH, GatewayFactory

Client = TestClient[web.Request, web.Application]
DOCS = "/api/v1/projects/{}/documents"


async def test_add_list_and_delete_documents(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    html = "<html><body><h1>Title</h1><p>First <b>bold</b> paragraph.</p></body></html>"
    response = await client.post(
        DOCS.format("mine"),
        json={"name": "a.html", "content": html, "format": "html"},
        headers=AUTH,
    )
    assert response.status == 201
    document = await response.json()
    assert document["name"] == "a.html" and document["format"] == "html"
    assert document["chunks"] == 1 and document["project"] == "mine"

    listed = await client.get(DOCS.format("mine"), headers=AUTH)
    assert [d["id"] for d in (await listed.json())["documents"]] == [document["id"]]

    deleted = await client.delete(f"{DOCS.format('mine')}/{document['id']}", headers=AUTH)
    assert deleted.status == 204
    listed = await client.get(DOCS.format("mine"), headers=AUTH)
    assert (await listed.json())["documents"] == []
    again = await client.delete(f"{DOCS.format('mine')}/{document['id']}", headers=AUTH)
    assert again.status == 404


async def test_another_users_project_is_not_found(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    body = {"name": "a.md", "content": "# Hello\n\nText."}
    assert (await client.post(DOCS.format("alices"), json=body, headers=AUTH)).status == 201
    for response in (
        await client.get(DOCS.format("alices"), headers=OTHER_AUTH),
        await client.post(DOCS.format("alices"), json=body, headers=OTHER_AUTH),
        await client.get(DOCS.format("nobodys"), headers=AUTH),
    ):
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


async def test_public_project_is_readable_by_all_and_not_writable_through_the_api(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    assert (await client.get(DOCS.format("docs"), headers=OTHER_AUTH)).status == 200
    body = {"name": "x.md", "content": "text"}
    assert (await client.post(DOCS.format("docs"), json=body, headers=AUTH)).status == 404


async def test_an_invalid_document_is_422_with_the_field(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    response = await client.post(
        DOCS.format("mine"), json={"name": "a", "content": " ", "format": "pdf"}, headers=AUTH
    )
    assert response.status == 422
    fields = {d["field"] for d in (await response.json())["error"]["details"]}
    assert fields == {"content", "format"}


async def test_a_refused_document_claims_no_project(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(real_connections)
    deep = {"name": "deep.html", "content": "<div>" * 200 + "x", "format": "html"}
    refused = await client.post(DOCS.format("free"), json=deep, headers=AUTH)
    assert refused.status == 422
    assert (await refused.json())["error"]["code"] == "validation_error"
    # Nothing was stored and the project is still free for whoever uploads first.
    plain = {"name": "a.md", "content": "Plain words."}
    assert (await client.post(DOCS.format("free"), json=plain, headers=OTHER_AUTH)).status == 201
    assert (await client.get(DOCS.format("free"), headers=AUTH)).status == 404
