"""The streaming chat routes: each maps its front end's request shape onto one chat turn
(gateway/turns.py), which takes the request's rate-limit hit.

Each parses its request in a helper of its own, so that the parsed body and its model are freed
before the stream starts, instead of living in the handler's frame as long as the stream."""

from __future__ import annotations

from aiohttp import web

from gateway.body import read_body, validate
from gateway.projects import require_project
from gateway.routes.sessions import session_id_from_path
from gateway.schemas import (
    ChatStreamBody,
    ProjectChatBody,
    QuestionStreamQuery,
    SessionMessageStreamBody,
)
from gateway.turns import Turn, TurnRequest, stream_turn
from shared.settings import PIPELINES

routes = web.RouteTableDef()


@routes.post("/api/v1/sessions/{session_id}/messages/stream")
@routes.post("/api/sessions/{session_id}/messages/stream")
async def session_message_stream(request: web.Request) -> web.StreamResponse:
    """Seed 002: ``{"content", "role"?, "simple_language"?}`` into an existing session."""
    return await stream_turn(request, await Turn.read(request, _session_message_turn))


async def _session_message_turn(request: web.Request) -> TurnRequest:
    session_id = session_id_from_path(request)
    body = await read_body(request, SessionMessageStreamBody, pipelines=PIPELINES)
    return TurnRequest(
        text=body.content,
        pipeline=body.pipeline,
        session_id=session_id,
        options={"simple_language": body.simple_language},
    )


@routes.post("/api/v1/chat/stream")
async def chat_stream(request: web.Request) -> web.StreamResponse:
    """Seed 004: ``{"text", "conversation_id"?, "metadata"?}``, opening with a snapshot."""
    return await stream_turn(request, await Turn.read(request, _chat_turn))


async def _chat_turn(request: web.Request) -> TurnRequest:
    body = await read_body(request, ChatStreamBody, pipelines=PIPELINES)
    metadata = body.metadata.model_dump(mode="json") if body.metadata else {}
    return TurnRequest(
        text=body.text,
        pipeline=body.pipeline,
        session_id=body.conversation_id,
        options={"metadata": metadata},
        snapshot=True,
    )


# No HEAD: a HEAD would start a job whose stream nobody reads.
@routes.get("/api/v1/question/stream", allow_head=False)
@routes.get("/api/question/stream", allow_head=False)
async def question_stream(request: web.Request) -> web.StreamResponse:
    """Seeds 000 and 001: ``?question=&session_id=&simple_language=`` on a GET."""
    return await stream_turn(request, await Turn.read(request, _question_turn))


async def _question_turn(request: web.Request) -> TurnRequest:
    query = validate(QuestionStreamQuery, dict(request.query), pipelines=PIPELINES)
    return TurnRequest(
        text=query.question,
        pipeline=query.pipeline,
        session_id=query.session_id,
        options={"simple_language": query.simple_language},
    )


@routes.post("/api/v1/projects/{project}/chat-stream")
async def project_chat_stream(request: web.Request) -> web.StreamResponse:
    """Seed 003: ``{"message", "session_id"?}``, answered from the project's collection."""
    return await stream_turn(request, await Turn.read(request, _project_turn))


async def _project_turn(request: web.Request) -> TurnRequest:
    project = await require_project(request, request.match_info["project"])
    body = await read_body(request, ProjectChatBody, pipelines=PIPELINES)
    return TurnRequest(
        text=body.message,
        pipeline=body.pipeline,
        session_id=body.session_id,
        options={"project": project, "simple_language": body.simple_language},
    )
