"""``POST /api/v1/batch`` (and ``/api/batch``, seeds 000/001): up to 20 requests in one call.

Each request runs through the app's own router and middlewares, in process, with the caller's
bearer token, so it is authenticated, rate limited, validated and answered exactly as it would
be on its own. aiohttp has no public API for this: :mod:`shared.library_internals` holds the
way in. Each item is a clone of the batch request taken before its body was read, with the
item's body already read, and a writer of its own that refuses every write, so that no item can
touch the socket (and its chunking and compression state) the batch reply goes out on.

A handler's response is never prepared here, so nothing reaches the socket: that is why a
route that streams is refused before it runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any, NoReturn

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gateway import appkeys
from gateway.body import read_json_object, validate
from gateway.errors import ApiError
from gateway.streaming_routes import streams_reply
from shared.library_internals import handle_in_app, sub_request
from shared.logging import get_logger

log = get_logger(__name__)

routes = web.RouteTableDef()

MAX_BATCH_REQUESTS = 20
MAX_ITEM_PATH_CHARS = 8 * 1024
# The caller's headers that each item carries; the rest describe the batch, not the item.
FORWARDED_HEADERS = ("Authorization", "Accept-Language", "User-Agent")

# Any method token: one the route does not take fails as its own item (405), not the batch.
Method = Annotated[str, Field(pattern=r"^[A-Z]{1,16}$")]
NOT_BATCHABLE = "not_batchable"


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    method: Annotated[Method, BeforeValidator(_upper)]
    # A path on this server, with its query string: never a URL to somewhere else.
    path: str = Field(pattern=r"^/([^/\\\x00-\x1f][^\x00-\x1f]*)?$", max_length=MAX_ITEM_PATH_CHARS)
    body: Any = None


class BatchBody(BaseModel):
    """``POST /api/v1/batch``: ``{"requests": [{"id"?, "method", "path", "body"?}]}``."""

    model_config = ConfigDict(extra="ignore")

    requests: list[BatchItem] = Field(max_length=MAX_BATCH_REQUESTS)


@routes.post("/api/v1/batch")
@routes.post("/api/batch")
async def batch(request: web.Request) -> web.Response:
    # Taken before the body is read: only an unread request can be cloned.
    template = request.clone()
    data = await read_json_object(request)
    requests = data.get("requests")
    if isinstance(requests, list) and len(requests) > MAX_BATCH_REQUESTS:
        raise ApiError(
            400,
            f"a batch holds at most {MAX_BATCH_REQUESTS} requests, not {len(requests)}",
            code="batch_too_large",
        )
    body = validate(BatchBody, data)
    responses = await asyncio.gather(
        *(_run_item(template, item, index) for index, item in enumerate(body.requests))
    )
    return web.json_response(
        {
            "success": True,
            "data": {
                "responses": list(responses),
                "count": len(responses),
                "timestamp": int(time.time() * 1000),
            },
        }
    )


async def _run_item(template: web.Request, item: BatchItem, index: int) -> dict[str, Any]:
    try:
        sub = _sub_request(template, item, index)
        match = await template.app.router.resolve(sub)
        if match.http_exception is None:
            if match.handler is batch:
                return _refused(item, "a batch cannot contain another batch")
            if streams_reply(match.handler, item.body):
                return _refused(item, "a streaming route cannot run in a batch; call it directly")
        response = await handle_in_app(template.app, sub)
    except web.HTTPException as e:
        # Redirects are raised past the error middleware, which formats only failures.
        return {"id": item.id, "status": e.status, "data": None}
    except asyncio.CancelledError:
        raise
    except Exception:
        # The error middleware answers every failure of a handler: this is a bug in the batch
        # machinery itself, and it fails this item only.
        log.exception("batch.item_failed", path=item.path)
        return {
            "id": item.id,
            "status": 500,
            "error": {"code": "internal", "message": "an internal error occurred", "details": None},
        }
    return _item_result(item, response)


def _sub_request(template: web.Request, item: BatchItem, index: int) -> web.Request:
    headers = {
        name: template.headers[name] for name in FORWARDED_HEADERS if name in template.headers
    }
    headers["X-Request-ID"] = f"{template[appkeys.REQUEST_ID]}.{index}"
    raw = b""
    if item.body is not None:
        raw = json.dumps(item.body).encode()
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(raw))
    return sub_request(
        template,
        method=item.method,
        rel_url=item.path,
        headers=headers,
        body=raw,
        writer=_NoSocket(),
    )


class _NoSocket(AbstractStreamWriter):
    """An item's writer: its response must never reach the socket it would otherwise share
    with the batch. Streaming routes are refused before they run; this stops one not yet known
    to :mod:`gateway.streaming_routes` when it prepares its response, before anything is
    written (as a 400 ``not_batchable`` for that item)."""

    def _refuse(self) -> NoReturn:
        raise ApiError(400, "this route streams and cannot run in a batch", code=NOT_BATCHABLE)

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self._refuse()

    async def write_eof(self, chunk: bytes = b"") -> None:
        self._refuse()

    async def drain(self) -> None:
        self._refuse()

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        self._refuse()

    def enable_chunking(self) -> None:
        self._refuse()

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        self._refuse()


def _refused(item: BatchItem, message: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": 400,
        "error": {"code": NOT_BATCHABLE, "message": message, "details": None},
    }


def _item_result(item: BatchItem, response: web.StreamResponse) -> dict[str, Any]:
    content: Any = None
    if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.body:
        if response.content_type == "application/json":
            content = json.loads(response.body)
        else:
            content = response.text
    if response.status >= 400:
        error = content.get("error") if isinstance(content, dict) else None
        return {"id": item.id, "status": response.status, "error": error or content}
    return {"id": item.id, "status": response.status, "data": content}
