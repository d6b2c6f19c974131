"""Which routes answer with a stream. A batch refuses them (a stream cannot be a JSON item) and
the OpenAPI document gives them ``text/event-stream``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.routes import chat, openai_compat, streams

# Each opens a chat turn, which takes its request's rate-limit hit (gateway/turns.py: Turn.read).
TURN_HANDLERS: frozenset[Handler] = frozenset(
    route.handler for route in chat.routes if isinstance(route, web.RouteDef)
)
STREAMING_HANDLERS: frozenset[Handler] = TURN_HANDLERS | {streams.attach_stream}
# Streams only when its body asks for it.
SOMETIMES_STREAMING_HANDLERS: frozenset[Handler] = frozenset({openai_compat.chat_completions})


def opens_turn(handler: Handler) -> bool:
    return handler in TURN_HANDLERS


def always_streams(handler: Handler) -> bool:
    return handler in STREAMING_HANDLERS


def streams_reply(handler: Handler, body: Any) -> bool:
    """Whether ``handler`` answers a request with this JSON ``body`` with a stream."""
    if handler in SOMETIMES_STREAMING_HANDLERS:
        return isinstance(body, dict) and bool(body.get("stream"))
    return always_streams(handler)
