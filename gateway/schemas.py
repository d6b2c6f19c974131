"""The request bodies and queries of the API, as pydantic models (validation only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from shared.ids import normalize_session_id

MAX_MESSAGE_CHARS = 16_000
MAX_TITLE_CHARS = 200


def check_message_text(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError as e:
        raise ValueError("must be valid Unicode text") from e
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValueError(f"must be at most {MAX_MESSAGE_CHARS} characters once trimmed")
    return text


def check_pipeline(value: str | None, info: ValidationInfo) -> str | None:
    pipelines = (info.context or {}).get("pipelines", ())
    if value is not None and value not in pipelines:
        raise ValueError(f"must be one of {', '.join(pipelines)}")
    return value


def check_session_id(value: object) -> str | None:
    return None if value is None else normalize_session_id(value)


# A client-chosen session id (digits or a UUID), normalized to how it is stored.
SessionId = Annotated[str | None, BeforeValidator(check_session_id)]


class _Body(BaseModel):
    # Unknown fields are ignored: front ends send extras (seed 000's clients do).
    model_config = ConfigDict(extra="ignore")


class _StreamBody(_Body):
    pipeline: str | None = None

    _pipeline = field_validator("pipeline")(check_pipeline)


class CreateSessionBody(_Body):
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    id: SessionId = None


class RenameSessionBody(_Body):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)


class SessionMessageStreamBody(_StreamBody):
    """``POST /api/v1/sessions/{id}/messages/stream`` (seed 002)."""

    content: str
    role: Literal["user"] = "user"
    simple_language: bool = False

    _content = field_validator("content")(check_message_text)


# msgpack carries integers of at most 64 bits; JSON has no such bound.
_WIRE_INT_MIN, _WIRE_INT_MAX = -(2**63), 2**64 - 1


def check_wire_safe(value: Any) -> Any:
    """Client JSON that travels inside a job must fit the msgpack wire format."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not _WIRE_INT_MIN <= value <= _WIRE_INT_MAX:
        raise ValueError("numbers must fit in 64 bits")
    if isinstance(value, dict):
        for item in value.values():
            check_wire_safe(item)
    elif isinstance(value, list):
        for item in value:
            check_wire_safe(item)
    return value


class ChatMetadata(_Body):
    client: str | None = None
    tags: list[str] = Field(default_factory=list)
    extras: dict[str, Any] = Field(default_factory=dict)

    _extras = field_validator("extras")(check_wire_safe)


class ChatStreamBody(_StreamBody):
    """``POST /api/v1/chat/stream`` (seed 004)."""

    text: str
    conversation_id: SessionId = None
    metadata: ChatMetadata | None = None

    _text = field_validator("text")(check_message_text)


class QuestionStreamQuery(_StreamBody):
    """``GET /api/v1/question/stream`` (seeds 000 and 001), from the query string."""

    question: str
    session_id: SessionId = None
    simple_language: bool = False

    _question = field_validator("question")(check_message_text)


class ProjectChatBody(_StreamBody):
    """``POST /api/v1/projects/{project}/chat-stream`` (seed 003)."""

    message: str
    session_id: SessionId = None
    simple_language: bool = False

    _message = field_validator("message")(check_message_text)


class ListQuery(_Body):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None
