"""Reading and validating JSON request bodies, with docs/api.md's 400, 413, 415 and 422."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from gateway.appkeys import SETTINGS
from gateway.errors import ApiError

Model = TypeVar("Model", bound=BaseModel)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    max_bytes = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"the request body is over {max_bytes} bytes")
    if media_type(request) != "application/json":
        raise ApiError(415, "the body must be application/json")
    try:
        raw = await _read(request, max_bytes)
    except web.HTTPRequestEntityTooLarge as e:
        raise ApiError(413, f"the request body is over {max_bytes} bytes") from e
    if not raw.strip():
        raise ApiError(400, "the request body is empty", code="invalid_json")
    try:
        data = json.loads(raw)
        # A lone surrogate (``"\ud800"``) parses, but is no text Redis or a client can carry.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError, UnicodeEncodeError) as e:
        raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from e
    except RecursionError as e:
        raise ApiError(400, "the request body nests too deeply", code="invalid_json") from e
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return data


async def _read(request: web.Request, max_bytes: int) -> bytes:
    """The request's body, read off the connection without caching it on the request as
    ``request.read()`` does (see :func:`media_type`). A request with nothing left to read (no
    body, or a batch item's, given to it already read) has ``request.read()`` answer."""
    if not request.can_read_body:
        return await request.read()
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_bytes, len(body))
    return bytes(body)


def media_type(request: web.Request) -> str:
    """The request's Content-Type without its parameters, as ``request.content_type`` gives it
    but without caching it on the request: a stream's request lives as long as the stream, and
    each attribute aiohttp adds to it after it is made can cost the request its compact
    attribute storage (several hundred bytes per stream)."""
    raw = request.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
    return raw.partition(";")[0].strip().lower()


def validate(model: type[Model], data: Any, **context: Any) -> Model:
    """``data`` as ``model``, or 422 listing each field's problem."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        details = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "body",
                "message": error["msg"],
            }
            for error in e.errors(include_url=False)
        ]
        raise ApiError(422, "the request is not valid", details=details) from e


async def read_body(request: web.Request, model: type[Model], **context: Any) -> Model:
    return validate(model, await read_json_object(request), **context)
