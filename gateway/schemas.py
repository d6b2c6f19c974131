"""The request bodies of the API, as pydantic models (validation only; responses are dicts)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_MESSAGE_CHARS = 16_000


def check_message_text(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValueError(f"must be at most {MAX_MESSAGE_CHARS} characters")
    return text


def check_pipeline(value: str | None, info: ValidationInfo) -> str | None:
    pipelines = (info.context or {}).get("pipelines", ())
    if value is not None and value not in pipelines:
        raise ValueError(f"must be one of {', '.join(pipelines)}")
    return value


class ChatMetadata(BaseModel):
    client: str | None = None
    tags: list[str] = Field(default_factory=list)
    extras: dict[str, Any] = Field(default_factory=dict)


class ChatStreamBody(BaseModel):
    """``POST /api/v1/chat/stream`` (seed 004)."""

    model_config = ConfigDict(extra="ignore")

    text: str
    conversation_id: str | int | None = None
    metadata: ChatMetadata | None = None
    pipeline: str | None = None

    _text = field_validator("text")(check_message_text)
    _pipeline = field_validator("pipeline")(check_pipeline)
