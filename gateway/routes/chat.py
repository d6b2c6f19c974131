"""The streaming chat routes: each maps its front end's request shape onto one job stream."""

from __future__ import annotations

from aiohttp import web

from gateway.body import read_body
from gateway.jobs import build_job, new_id, stream_new_job
from gateway.schemas import ChatStreamBody
from shared.settings import PIPELINES

routes = web.RouteTableDef()


@routes.post("/api/v1/chat/stream")
async def chat_stream(request: web.Request) -> web.StreamResponse:
    """Seed 004: ``{"text", "conversation_id"?, "metadata"?}``."""
    body = await read_body(request, ChatStreamBody, pipelines=PIPELINES)
    session_id = str(body.conversation_id) if body.conversation_id is not None else new_id()
    metadata = body.metadata.model_dump(mode="json") if body.metadata else {}
    job = build_job(
        request,
        session_id=session_id,
        text=body.text,
        pipeline=body.pipeline,
        options={"metadata": metadata},
    )
    return await stream_new_job(request, job)
