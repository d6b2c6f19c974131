"""JSON schemas of the event streams, for the OpenAPI document. An SSE response's schema
describes each message (``data``, ``event``, ``id``, ``retry``, the way schemathesis and
OpenAPI 3.2's ``itemSchema`` read a stream), with the JSON inside ``data`` described by
``contentSchema``."""

from __future__ import annotations

from typing import Any

from gateway.openapi_models import Citation
from shared import events

# The fields each event type always carries (docs/api.md, "Events").
_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    events.START: ("jobId", "sessionId", "messageId"),
    events.PROGRESS: ("progress",),
    events.TOKEN: ("content", "delta", "done"),
    events.HEARTBEAT: ("timestamp", "phase"),
    events.RESET: ("reason",),
    events.END: ("messageId", "delta", "done", "finishReason", "content", "citations", "usage"),
    events.ERROR: ("error", "code"),
    events.SNAPSHOT: ("session", "messages"),
}


def _field_schemas() -> dict[str, dict[str, Any]]:
    """The schemas of the fields whose shape the contract fixes, by event type."""
    return {
        events.END: {
            "citations": {"type": "array", "items": Citation.model_json_schema()},
        },
    }


def _event_payload_schema() -> dict[str, Any]:
    fields_of = _field_schemas()
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(_REQUIRED_FIELDS)}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": kind}}},
                "then": {"required": list(fields)}
                | ({"properties": fields_of[kind]} if kind in fields_of else {}),
            }
            for kind, fields in _REQUIRED_FIELDS.items()
        ],
    }


def chat_event_schema() -> dict[str, Any]:
    """One message of a chatstream stream: a job event, a heartbeat or the snapshot."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"enum": ["message", events.SNAPSHOT]},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "retry": {"type": "integer", "minimum": 0},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": _event_payload_schema(),
            },
        },
    }


def completion_chunk_schema() -> dict[str, Any]:
    """One message of a ``stream: true`` completion: a JSON chunk, or ``[DONE]`` last."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"event": {"const": "message"}, "data": {"type": "string"}},
    }
