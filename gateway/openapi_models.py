"""The JSON bodies the API answers with, as pydantic models. They exist for the OpenAPI
document (``model_json_schema()``); the handlers build their replies from the stores' own
``to_json`` and must match these, which the schemathesis run in the tests checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


class SessionOut(BaseModel):
    id: str
    title: str
    userId: str
    createdAt: str
    updatedAt: str
    messageCount: int


class SessionList(BaseModel):
    sessions: list[SessionOut]
    nextCursor: str | None


class Citation(BaseModel):
    """One cited passage, in the ``end`` event and on a stored assistant message: the number
    its ``[n]`` marker in the answer carries, where the passage comes from, and the sentences
    of it that the answer quotes."""

    id: int = Field(description="the n of the answer's [n] marker")
    project: str
    documentId: str
    document: str = Field(description="the document's name")
    chunkId: str
    score: float = Field(description="the retrieval score, higher is closer")
    quotes: list[str] = Field(description="the passage's sentences the answer quotes")


class MessageOut(BaseModel):
    id: str
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "streaming", "cancelled", "error"]
    createdAt: str
    jobId: str | None = None
    citations: list[Citation] | None = None
    usage: dict[str, Any] | None = None


class MessageList(BaseModel):
    messages: list[MessageOut]


class TicketOut(BaseModel):
    ticket: str
    expiresAt: str


class CancelOut(BaseModel):
    jobId: str
    status: Literal["cancelling"]


class BatchItemOut(BaseModel):
    id: str | int | None
    status: int
    data: Any = None
    error: Any = None


class BatchData(BaseModel):
    responses: list[BatchItemOut]
    count: int
    timestamp: int = Field(description="epoch milliseconds")


class BatchOut(BaseModel):
    success: Literal[True]
    data: BatchData


class CompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class CompletionChoice(BaseModel):
    index: int
    message: CompletionMessage
    logprobs: None = None
    finish_reason: str


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    """OpenAI's ``chat.completion``."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


class HealthOut(BaseModel):
    status: str
    # chatstream's release (pyproject.toml's version).
    version: str


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, bool]


class DocumentOut(BaseModel):
    id: str
    project: str
    name: str
    format: Literal["markdown", "text", "html"]
    chunks: int
    chars: int
    createdAt: str


class DocumentList(BaseModel):
    project: str
    documents: list[DocumentOut]
