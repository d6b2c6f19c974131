"""The OpenAI-compatible face: ``POST /v1/chat/completions`` and ``GET /v1/models``.

A completion is one chat turn in a new session of the caller's, on the pipeline its ``model``
names; the last user message is the text. The streaming reply is the ordinary relay with an
OpenAI encoding (:mod:`gateway.openai_chunks`).
"""

from __future__ import annotations

import time
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway import appkeys
from gateway.body import read_body
from gateway.errors import ApiError, not_found, validation_error
from gateway.final_event import JobTimeoutError, wait_for_final_event
from gateway.openai_chunks import CompletionChunks, completion_id
from gateway.relay import Encoding
from gateway.schemas import check_message_text
from gateway.turns import Turn, TurnRequest, stream_turn
from shared import events
from shared.settings import PIPELINES

routes = web.RouteTableDef()

MODEL_OWNER = "chatstream"


class _OpenAiBody(BaseModel):
    # OpenAI clients send many optional fields (temperature, n, ...); the pipelines take none.
    model_config = ConfigDict(extra="ignore")


class ContentPart(_OpenAiBody):
    type: str
    text: str | None = None


class ChatMessage(_OpenAiBody):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionBody(_OpenAiBody):
    """``POST /v1/chat/completions``: ``model`` names a pipeline."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def prompt_of(body: ChatCompletionBody) -> str:
    """The last user message's text, checked like every chat message (1 to 16,000 characters
    once trimmed)."""
    for message in reversed(body.messages):
        if message.role == "user":
            try:
                return check_message_text(message.text)
            except ValueError as e:
                raise validation_error("messages", f"the last user message {e}") from e
    raise validation_error("messages", "must contain a user message")


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, ChatCompletionBody)
    if body.model not in PIPELINES:
        raise not_found(f"model {body.model!r}")
    prompt = prompt_of(body)
    chunks = CompletionChunks(completion_id(), body.model, int(time.time()), prompt)
    # Its rate-limit hit was taken by the middleware: the turn carries none.
    if body.stream:
        asked = TurnRequest(
            text=prompt,
            pipeline=body.model,
            encoding=Encoding(frame=chunks.frame, heartbeat=chunks.heartbeat, retry=False),
        )
        return await stream_turn(request, Turn.of(request, asked))
    turn = Turn.of(request, TurnRequest(text=prompt, pipeline=body.model))
    job = turn.job
    # Past the wait the job goes on, and its message completes in the session afterwards.
    timeout_s = request.app[appkeys.SETTINGS].completion_timeout_s
    try:
        final = await wait_for_final_event(request, turn, timeout_s)
    except JobTimeoutError as e:
        raise ApiError(504, "the answer took too long", code="timeout") from e
    if final.type == events.ERROR:
        raise ApiError(
            502, str(final.payload.get("error", "the job failed")), code="pipeline_error"
        )
    return web.json_response(
        chunks.completion(final.payload),
        headers={"X-Job-Id": job.job_id, "X-Session-Id": job.session_id},
    )


def model_object(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": MODEL_OWNER}


@routes.get("/v1/models")
async def list_models(_: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [model_object(n) for n in PIPELINES]})


@routes.get("/v1/models/{model}")
async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if name not in PIPELINES:
        raise not_found(f"model {name!r}")
    return web.json_response(model_object(name))
