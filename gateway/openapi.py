"""The OpenAPI 3.1 document of the gateway, served at ``GET /api/v1/openapi.json``.

It is built from the app's own router, so every registered route is in it: each handler's
operation (request body or query model, replies, the errors it can answer, the links from its
replies to the operations that take their values) is described in :data:`OPERATIONS`, and the
JSON schemas come from the pydantic models (``model_json_schema``). A route whose handler is
not described still appears, marked ``x-undocumented``, and a test fails on it. HEAD (implied
by every GET) and OPTIONS (CORS preflights) are left out.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from gateway import metrics
from gateway import openapi_models as out
from gateway.openapi_events import chat_event_schema, completion_chunk_schema
from gateway.routes import batch, chat, health, openai_compat, projects, sessions, static, streams
from gateway.schemas import (
    ChatStreamBody,
    CreateSessionBody,
    ListQuery,
    ProjectChatBody,
    QuestionStreamQuery,
    RenameSessionBody,
    SessionMessageStreamBody,
)
from gateway.streaming_routes import always_streams

routes = web.RouteTableDef()

OPENAPI_PATH = "/api/v1/openapi.json"
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})
REF_TEMPLATE = "#/components/schemas/{model}"
EVENT_STREAM: Final = "text/event-stream"
NO_BODY: Final = "no body"


@dataclass(frozen=True, slots=True)
class Stream:
    """A ``text/event-stream`` reply; ``message`` is the schema of each SSE message."""

    message: dict[str, Any]


CHAT_EVENTS = Stream(chat_event_schema())
COMPLETION_CHUNKS = Stream(completion_chunk_schema())

Reply = type[BaseModel] | Stream | str

_ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "invalid_json: the body is not a JSON object (or batch_too_large)",
    401: "unauthorized: no token, a bad one, or an expired one",
    404: "not_found: no such resource, or another user's",
    409: "conflict",
    410: "gone: the stream's events and its message are gone",
    413: "payload_too_large",
    415: "unsupported_media_type: the body must be application/json",
    422: "validation_error: details lists each field's problem",
    429: "rate_limited: too many requests or jobs in flight; details name the limit",
    502: "the pipeline failed",
    503: "unavailable: the broker or the store cannot be reached",
    504: "the answer took too long",
}
_ERROR_HEADERS: Mapping[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"required": True, "schema": {"type": "string"}}},
    503: {"Retry-After": {"required": True, "schema": {"type": "string"}}},
}
_STREAM_HEADERS = {
    name: {"required": True, "schema": {"type": "string"}} for name in ("X-Job-Id", "X-Session-Id")
}


@dataclass(frozen=True, slots=True)
class Link:
    """An OpenAPI link from an operation's success replies to the operation of ``target``
    that takes a value of them (stateful clients and schemathesis follow it). ``parameters``
    maps ``path.NAME`` or ``query.NAME`` to a runtime expression; ``body`` is the target's
    request body, its values runtime expressions."""

    target: Handler
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    replies: Mapping[int, Reply | tuple[Reply, ...]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # Errors besides those that follow from the rest (auth, body, query, path ids).
    errors: tuple[int, ...] = ()
    public: bool = False
    parameters: tuple[dict[str, Any], ...] = field(default=())
    tags: tuple[str, ...] = ()
    links: Mapping[str, Link] = field(default_factory=dict)


_STREAM = {200: CHAT_EVENTS}
_RESUME_PARAMETERS = (
    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "lastEventId", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "ticket", "in": "query", "required": False, "schema": {"type": "string"}},
)


_SESSION = {"path.session_id": "$response.body#/id"}
_SESSION_LINKS = {
    "GetSession": Link(sessions.get_session, _SESSION),
    "RenameSession": Link(sessions.rename_session, _SESSION),
    "ListMessages": Link(sessions.list_messages, _SESSION),
    "SendMessage": Link(chat.session_message_stream, _SESSION),
    "DeleteSession": Link(sessions.delete_session, _SESSION),
}
_JOB = "$response.header.X-Job-Id"
# Every chat turn's stream names its job: a ticket for it, a second reader, the stop button.
_JOB_LINKS = {
    "CreateTicket": Link(streams.create_ticket, body={"jobId": _JOB}),
    "AttachStream": Link(streams.attach_stream, {"path.job_id": _JOB}),
    "CancelStream": Link(streams.cancel_stream, {"path.job_id": _JOB}),
}
_TICKET_LINKS = {
    "AttachWithTicket": Link(
        streams.attach_stream,
        {"path.job_id": "$request.body#/jobId", "query.ticket": "$response.body#/ticket"},
    ),
}
_PROJECT = "$request.path.project"
_DOCUMENT_LINKS = {
    "ListDocuments": Link(projects.list_documents, {"path.project": _PROJECT}),
    "DeleteDocument": Link(
        projects.delete_document,
        {"path.project": _PROJECT, "path.document_id": "$response.body#/id"},
    ),
}


@routes.get(OPENAPI_PATH)
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(build_document(request.app))


OPERATIONS: Mapping[Handler, Operation] = {
    health.healthz: Operation("The process serves", {200: out.HealthOut}, public=True),
    health.readyz: Operation(
        "Redis and the job queue answer", {200: out.ReadyOut}, errors=(503,), public=True
    ),
    openapi_document: Operation("This document", {200: "application/json"}, public=True),
    sessions.create_session: Operation(
        "Create a session, or get one the caller already owns",
        {200: out.SessionOut, 201: out.SessionOut},
        body=CreateSessionBody,
        errors=(409,),
        links=_SESSION_LINKS,
    ),
    sessions.list_sessions: Operation(
        "The caller's sessions, most recently updated first",
        {200: out.SessionList},
        query=ListQuery,
    ),
    sessions.get_session: Operation("One session", {200: out.SessionOut}),
    sessions.rename_session: Operation(
        "Rename a session", {200: out.SessionOut}, body=RenameSessionBody
    ),
    sessions.delete_session: Operation(
        "Delete a session and its messages; a running job is cancelled", {204: NO_BODY}
    ),
    sessions.list_messages: Operation("A session's messages, oldest first", {200: out.MessageList}),
    chat.session_message_stream: Operation(
        "Seed 002: a message into a session, streamed",
        _STREAM,
        body=SessionMessageStreamBody,
        links=_JOB_LINKS,
    ),
    chat.chat_stream: Operation(
        "Seed 004: a chat turn, opening with a snapshot",
        _STREAM,
        body=ChatStreamBody,
        links=_JOB_LINKS,
    ),
    chat.question_stream: Operation(
        "Seeds 000/001: a question on a GET, streamed",
        _STREAM,
        query=QuestionStreamQuery,
        links=_JOB_LINKS,
    ),
    chat.project_chat_stream: Operation(
        "Seed 003: a chat turn answered from a project's collection",
        _STREAM,
        body=ProjectChatBody,
        links=_JOB_LINKS,
    ),
    streams.create_ticket: Operation(
        "A ticket that opens one job's stream without a header",
        {201: out.TicketOut},
        body=streams.TicketBody,
        errors=(404,),
        links=_TICKET_LINKS,
    ),
    streams.attach_stream: Operation(
        "Attach to a job's stream, replaying after Last-Event-ID",
        _STREAM,
        errors=(410, 422),
        parameters=_RESUME_PARAMETERS,
    ),
    streams.cancel_stream: Operation("Stop a running job", {202: out.CancelOut}, errors=(409,)),
    batch.batch: Operation(
        "Up to 20 requests in one call", {200: out.BatchOut}, body=batch.BatchBody
    ),
    openai_compat.chat_completions: Operation(
        "OpenAI chat completion; model names a pipeline",
        {200: (out.ChatCompletionOut, COMPLETION_CHUNKS)},
        body=openai_compat.ChatCompletionBody,
        errors=(404, 502, 504),
        tags=("openai",),
    ),
    openai_compat.list_models: Operation(
        "The pipelines, as OpenAI models", {200: out.ModelList}, tags=("openai",)
    ),
    openai_compat.get_model: Operation(
        "One pipeline, as an OpenAI model", {200: out.ModelOut}, tags=("openai",)
    ),
    projects.add_document: Operation(
        "Add a document to a project's collection (the first upload claims the project)",
        {201: out.DocumentOut},
        body=projects.DocumentBody,
        tags=("projects",),
        links=_DOCUMENT_LINKS,
    ),
    projects.list_documents: Operation(
        "A project's documents", {200: out.DocumentList}, tags=("projects",)
    ),
    projects.delete_document: Operation(
        "Remove a document from a project", {204: NO_BODY}, tags=("projects",)
    ),
    metrics.prometheus_metrics: Operation(
        "Prometheus metrics (text exposition format)", {200: "text/plain"}, public=True
    ),
    static.index: Operation("The chat page", {200: "text/html"}, public=True, tags=("page",)),
    static.static_file: Operation(
        "The chat page's scripts and styles",
        {200: ("text/javascript", "text/css", "text/plain")},
        errors=(404,),
        public=True,
        tags=("page",),
    ),
}


def build_document(app: web.Application) -> dict[str, Any]:
    schemas = _SchemaCollector()
    paths: dict[str, dict[str, Any]] = {}
    documented = [
        (route.method, route.resource.canonical, route.handler)
        for route in app.router.routes()
        if route.method not in SKIPPED_METHODS and route.resource is not None
    ]
    targets = _LinkTargets(documented)
    for method, path, handler in documented:
        paths.setdefault(path, {})[method.lower()] = _operation(
            method, path, handler, schemas, targets
        )
    definitions = schemas.definitions()
    return {
        "openapi": "3.1.0",
        "info": {"title": "chatstream", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(
    method: str, path: str, handler: Handler, schemas: _SchemaCollector, targets: _LinkTargets
) -> dict[str, Any]:
    op = OPERATIONS.get(handler)
    if op is None:
        return {
            "operationId": _operation_id(method, path),
            "x-undocumented": True,
            "responses": {"default": {"description": "not described"}},
        }
    path_names = re.findall(r"{([^}:]+)", path)
    errors = set(op.errors)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_names
    ]
    if path_names:
        errors.add(404)
    if op.query is not None:
        parameters.extend(_query_parameters(op.query))
        errors.add(422)
    parameters.extend(op.parameters)
    document: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "parameters": parameters,
    }
    if op.tags:
        document["tags"] = list(op.tags)
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(op.body, "validation")}},
        }
        errors.update({400, 413, 415, 422})
    if op.public:
        document["security"] = []
    else:
        errors.update({401, 429, 503})
    responses = {
        str(status): _reply(reply, handler, schemas) for status, reply in op.replies.items()
    }
    if op.links:
        links = {name: targets.link(link, path) for name, link in op.links.items()}
        for code, success in responses.items():
            if code.startswith("2"):
                success["links"] = links
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "headers": _ERROR_HEADERS.get(status, {}),
            "content": {"application/json": {"schema": schemas.ref(out.ErrorBody)}},
        }
    document["responses"] = responses
    return document


class _LinkTargets:
    """The operation a link points to. A handler served at two paths (``/api/sessions`` and
    ``/api/v1/sessions``) is linked at the one that shares more of the source's path, so a
    client that started on one prefix stays on it."""

    def __init__(self, operations: list[tuple[str, str, Handler]]) -> None:
        self._at: dict[Handler, list[tuple[str, str]]] = {}
        for method, path, handler in operations:
            self._at.setdefault(handler, []).append((method, path))

    def link(self, link: Link, source_path: str) -> dict[str, Any]:
        method, path = max(
            self._at[link.target],
            key=lambda at: len(posixpath.commonpath([at[1], source_path])),
        )
        document: dict[str, Any] = {"operationId": _operation_id(method, path)}
        if link.parameters:
            document["parameters"] = dict(link.parameters)
        if link.body is not None:
            document["requestBody"] = dict(link.body)
        return document


def _reply(
    replies: Reply | tuple[Reply, ...], handler: Handler, schemas: _SchemaCollector
) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for reply in replies if isinstance(replies, tuple) else (replies,):
        if reply == NO_BODY:
            return {"description": "no content"}
        if isinstance(reply, Stream):
            content[EVENT_STREAM] = {"schema": reply.message}
        elif isinstance(reply, str):
            content[reply] = {"schema": {"type": "object"}}
        else:
            content["application/json"] = {"schema": schemas.ref(reply)}
    document: dict[str, Any] = {"description": "success", "content": content}
    if always_streams(handler):
        document["headers"] = _STREAM_HEADERS
    return document


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _not_null(prop)}
        for name, prop in schema["properties"].items()
    ]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop ``null`` from its schema."""
    options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(options) == 1:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**rest, **options[0]}
    return {k: v for k, v in schema.items() if k != "default" or v is not None}


def _operation_id(method: str, path: str) -> str:
    return method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_")


class _SchemaCollector:
    """The models the document refers to. A reference is handed out at once and filled in by
    :meth:`definitions`, because pydantic names each schema only once it has seen them all
    (a model used both as input and output may get two)."""

    def __init__(self) -> None:
        self._refs: list[tuple[type[BaseModel], JsonSchemaMode, dict[str, Any]]] = []

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        placeholder: dict[str, Any] = {}
        self._refs.append((model, mode, placeholder))
        return placeholder

    def definitions(self) -> dict[str, Any]:
        wanted = list(dict.fromkeys((model, mode) for model, mode, _ in self._refs))
        refs, top = models_json_schema(wanted, ref_template=REF_TEMPLATE)
        for model, mode, placeholder in self._refs:
            placeholder.update(refs[(model, mode)])
        definitions: dict[str, Any] = top.get("$defs", {})
        return definitions
