"""Knowledge collections over HTTP: add, list and delete a project's documents.

A project is claimed by the user whose upload creates it; another user's project answers 404
as if it did not exist. Public projects (``PUBLIC_PROJECTS``) can be listed by everyone and
are written only by the operator with ``chatstream ingest``, so for writing they are 404 too.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway import appkeys
from gateway.auth import user_of
from gateway.body import read_body
from gateway.errors import not_found, validation_error
from gateway.projects import require_project
from shared.knowledge import DocumentRefused, KnowledgeStore, claim, knowledge_store

routes = web.RouteTableDef()

MAX_DOCUMENT_NAME_CHARS = 200


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=MAX_DOCUMENT_NAME_CHARS)
    content: str = Field(min_length=1)
    format: Literal["markdown", "text", "html"] = "markdown"

    @field_validator("name", "content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def _store(request: web.Request) -> KnowledgeStore:
    settings = request.app[appkeys.SETTINGS]
    return knowledge_store(request.app[appkeys.REDIS], settings.connections.names, settings.rag)


async def _check(request: web.Request, *, write: bool) -> str:
    """The project of the route, or 404 when the caller may not read (or write) it."""
    return await require_project(request, request.match_info["project"], write=write)


@routes.post("/api/v1/projects/{project}/documents")
async def add_document(request: web.Request) -> web.Response:
    project = await _check(request, write=True)
    body = await read_body(request, DocumentBody)
    store = _store(request)
    # Parsed before the claim, so that a refused document claims no project.
    try:
        parsed = await store.parse(body.content, body.format)
    except DocumentRefused as e:
        raise validation_error("content", str(e)) from e
    settings = request.app[appkeys.SETTINGS]
    # Two users racing for a new project: only the first claim wins, the other sees 404.
    if not await claim(
        request.app[appkeys.REDIS], settings.connections.names, user_of(request), project
    ):
        raise not_found("project")
    document = await store.add_parsed(project, body.name, parsed)
    return web.json_response(document.to_api(), status=201)


@routes.get("/api/v1/projects/{project}/documents")
async def list_documents(request: web.Request) -> web.Response:
    project = await _check(request, write=False)
    documents = await _store(request).documents(project)
    return web.json_response({"project": project, "documents": [d.to_api() for d in documents]})


@routes.delete("/api/v1/projects/{project}/documents/{document_id}")
async def delete_document(request: web.Request) -> web.Response:
    project = await _check(request, write=True)
    if not await _store(request).delete_document(project, request.match_info["document_id"]):
        raise not_found("document")
    return web.Response(status=204)
