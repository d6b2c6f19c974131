"""Reading and validating JSON request bodies, with docs/api.md's 400, 413, 415 and 422."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from gateway.appkeys import SETTINGS
from gateway.errors import ApiError

Model = TypeVar("Model", bound=BaseModel)

# Levels of objects and arrays in a JSON body, the body itself being level 1. No route needs
# more than a few; free-form values (chat metadata, batch item bodies) past this bound would
# reach pydantic's serialization depth limit, msgpack's, or a client's recursion.
MAX_JSON_DEPTH = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is beyond the range of a double")
    return value


def _not_json(literal: str) -> NoReturn:
    raise ValueError(f"{literal} is not JSON")


# NaN and Infinity are not JSON, and a number such as 1e309 would be read as infinity: a client
# could not read any of them back, and no route has a use for them.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_not_json)


def too_deep_at(data: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """The dotted path of the first object or array in ``data`` nested deeper than
    ``max_depth`` levels (``data`` itself is level 1), or None. Iterative, so that a value
    parsed at any depth is measured without recursion."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            children: Any = ((str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            children = ((str(index), item) for index, item in enumerate(value))
        else:
            continue
        if len(path) >= max_depth:
            return ".".join(path)
        stack.extend((item, (*path, key)) for key, item in children)
    return None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    max_bytes = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"the request body is over {max_bytes} bytes")
    if media_type(request) != "application/json":
        raise ApiError(415, "the body must be application/json")
    try:
        raw = await _read(request, max_bytes)
    except web.HTTPRequestEntityTooLarge as e:
        # Counted after decompression: aiohttp inflates a gzip or deflate body in bounded steps
        # and the read stops at the limit, so a small body that would inflate past it (a zip
        # bomb) is refused here, never inflated whole.
        raise ApiError(413, f"the request body is over {max_bytes} bytes") from e
    except web.RequestPayloadError as e:
        # A body that does not decode as its Content-Encoding says, or whose chunks are broken.
        raise ApiError(400, "the request body cannot be decoded", code="invalid_json") from e
    if not raw.strip():
        raise ApiError(400, "the request body is empty", code="invalid_json")
    try:
        # As json.loads reads UTF-8 bytes: a leading byte-order mark is dropped.
        data = _DECODER.decode(raw.decode("utf-8-sig"))
        # A lone surrogate (``"\ud800"``) parses, but is no text Redis or a client can carry.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError, UnicodeEncodeError) as e:
        raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from e
    except RecursionError as e:
        raise ApiError(400, "the request body nests too deeply", code="invalid_json") from e
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    too_deep = too_deep_at(data)
    if too_deep is not None:
        message = f"nests more than {MAX_JSON_DEPTH} levels of objects and arrays"
        raise ApiError(
            422, "the request is not valid", details=[{"field": too_deep, "message": message}]
        )
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
