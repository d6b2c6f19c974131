"""What the hostile-input tests share: a client that puts exact bytes on the wire, the
documented error shapes, the table of every route, and a world of one user's resources.

Requests go out on a bare socket, not through aiohttp's client, because the client quotes,
normalizes and validates what it sends: a ``%2e%2e`` would become ``..`` and be resolved, a CR
in a header would be refused before it left. The server must be tested on what it can receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from tests.conftest import AUTH
from tests.support.chunked import dechunk
from tests.support.sse import job_events, parse_sse

Client = TestClient[web.Request, web.Application]

READ_TIMEOUT_S = 30.0

# The characters that must never slip through in an id or a header, each by name.
CONTROL_CHARACTERS = {
    "nul": "\x00",
    "cr": "\r",
    "lf": "\n",
    "crlf": "\r\n",
    "tab": "\t",
    "del": "\x7f",
    "c1-nel": "\x85",
    "c1-csi": "\x9b",
    "line-separator": "\u2028",
}


@dataclass
class Reply:
    """A response as read off the socket."""

    status: int
    headers: CIMultiDict[str]
    # Everything after the head: a second response would follow the first one's body here.
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


async def send(
    client: Client,
    method: str,
    target: str | bytes,
    *,
    headers: dict[str, str | bytes] | None = None,
    body: bytes | None = None,
    chunked: bool = False,
) -> Reply:
    """One request with exactly these bytes (``target`` as given: encode it yourself), read to
    the close of the connection. ``chunked`` sends the body in chunks, without a length."""
    lines = [
        (method.encode() if isinstance(method, str) else method)
        + b" "
        + (target.encode() if isinstance(target, str) else target)
        + b" HTTP/1.1",
        b"Host: test",
        b"Connection: close",
    ]
    for name, value in (headers or {}).items():
        lines.append(name.encode() + b": " + (value.encode() if isinstance(value, str) else value))
    if body is not None and chunked:
        lines.append(b"Transfer-Encoding: chunked")
        pieces = [body[i : i + 8192] for i in range(0, len(body), 8192)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    elif body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    return await send_raw(client, b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))


async def send_raw(client: Client, raw_request: bytes) -> Reply:
    """``raw_request`` as it is, and the response, read to the close of the connection."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw_request)
        # A server that refuses a body may answer and close before it has all been sent.
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        async with asyncio.timeout(READ_TIMEOUT_S):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.add(name.strip(), value.strip())
    if parsed.get("Transfer-Encoding", "").lower() == "chunked":
        rest = dechunk(rest)
    return Reply(int(status_line.split(" ")[1]), parsed, rest)


async def send_json(
    client: Client,
    method: str,
    target: str,
    value: Any = None,
    *,
    raw: bytes | None = None,
    auth: dict[str, str] | None = AUTH,
    headers: dict[str, str | bytes] | None = None,
) -> Reply:
    """A JSON request as Alice (or as ``auth`` says, None for no token): ``value`` encoded, or
    ``raw`` as it is."""
    all_headers: dict[str, str | bytes] = {**(auth or {}), **(headers or {})}
    body = raw if raw is not None else None if value is None else json.dumps(value).encode()
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    return await send(client, method, target, headers=all_headers, body=body)


def assert_error(reply: Reply, status: int, code: str, label: object = "") -> dict[str, Any]:
    """docs/api.md's error body: ``{"error": {"code", "message", "details"}}``."""
    assert reply.status == status, (label, reply.status, reply.text[:500])
    assert reply.content_type == "application/json", (label, reply.headers)
    body = reply.json()
    assert set(body) == {"error"}, (label, body)
    assert set(body["error"]) == {"code", "message", "details"}, (label, body)
    assert body["error"]["code"] == code, (label, body)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], (label, body)
    if status == 401:
        assert reply.headers["WWW-Authenticate"] == "Bearer", label
    return dict(body["error"])


def assert_refused_by_the_parser(reply: Reply, label: object = "") -> None:
    """aiohttp's HTTP parser refuses a malformed request line or header before any middleware
    runs, with a plain-text 400 (docs/decisions.md, "Limits")."""
    assert reply.status == 400, (label, reply.status, reply.text[:500])
    assert reply.content_type == "text/plain", (label, reply.headers)


def nested(levels: int, kind: str = "object") -> Any:
    """A JSON value of ``levels`` levels of objects (``{"a": ...}``) or arrays."""
    value: Any = {} if kind == "object" else []
    for _ in range(levels - 1):
        value = {"a": value} if kind == "object" else [value]
    return value


def nested_text(levels: int, kind: str = "object") -> str:
    """``nested(levels, kind)`` as JSON text, written without recursion."""
    if kind == "object":
        return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)
    return "[" * levels + "]" * levels


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one path segment, every reserved character included."""
    return quote(value, safe="")


def query(params: dict[str, str]) -> str:
    return "?" + urlencode(params) if params else ""


@dataclass(frozen=True)
class World:
    """One user's resources on a gateway: Alice's session (titled with a secret), her ended
    job in it, her project and its document."""

    session_id: str
    job_id: str
    project: str
    document_id: str
    secret: str

    def slots(self) -> dict[str, str]:
        """Each path slot of the route table, filled with Alice's own resource."""
        return {
            "session": self.session_id,
            "job": self.job_id,
            "project": self.project,
            "document": self.document_id,
            "model": "echo",
            "name": "chatstream.js",
        }


async def make_world(client: Client, secret: str, auth: dict[str, str] = AUTH) -> World:
    created = await client.post("/api/v1/sessions", json={"title": secret}, headers=auth)
    assert created.status == 201, await created.text()
    session_id = (await created.json())["id"]
    turn = await client.post(
        f"/api/v1/sessions/{session_id}/messages/stream",
        json={"content": f"{secret} in a message", "pipeline": "echo"},
        headers=auth,
    )
    assert turn.status == 200, await turn.text()
    assert job_events(parse_sse(await turn.read()))[-1]["type"] == "end"
    project = f"p-{secret}"
    document = await client.post(
        f"/api/v1/projects/{project}/documents",
        json={"name": f"{secret}.md", "content": f"# {secret}\n\nThe {secret} document."},
        headers=auth,
    )
    assert document.status == 201, await document.text()
    return World(
        session_id=session_id,
        job_id=turn.headers["X-Job-Id"],
        project=project,
        document_id=(await document.json())["id"],
        secret=secret,
    )


@dataclass(frozen=True)
class Route:
    """One route of the gateway, with a request that it would accept from Alice."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    public: bool = False

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def target(self, world: World, **slots: str) -> str:
        """The path with Alice's resources in its slots (or the already encoded ``slots``
        given), then the query string."""
        filled = {name: path_segment(value) for name, value in world.slots().items()}
        return self.path.format(**{**filled, **slots}) + query(self.params)

    @property
    def canonical(self) -> str:
        """The path as aiohttp's router names it."""
        names = {
            "session": "{session_id}",
            "job": "{job_id}",
            "project": "{project}",
            "document": "{document_id}",
            "model": "{model}",
            "name": "{name}",
        }
        return self.path.format(**names)


ECHO = {"pipeline": "echo"}
SESSION_PREFIXES = ("/api/v1/sessions", "/api/sessions")

# Every route of the gateway (a test checks the table against the router both ways).
ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", public=True),
    Route("GET", "/readyz", public=True),
    Route("GET", "/metrics", public=True),
    Route("GET", "/api/v1/openapi.json", public=True),
    Route("GET", "/", public=True),
    Route("GET", "/static/{name}", public=True),
    *(
        route
        for prefix in SESSION_PREFIXES
        for route in (
            Route("POST", prefix, body={"title": "t"}),
            Route("GET", prefix, params={"limit": "5"}),
            Route("GET", prefix + "/{session}"),
            Route("PATCH", prefix + "/{session}", body={"title": "t"}),
            Route("DELETE", prefix + "/{session}"),
            Route("GET", prefix + "/{session}/messages"),
            Route("POST", prefix + "/{session}/messages/stream", body={"content": "hi", **ECHO}),
        )
    ),
    Route("POST", "/api/v1/chat/stream", body={"text": "hi", **ECHO}),
    Route("GET", "/api/v1/question/stream", params={"question": "hi", **ECHO}),
    Route("GET", "/api/question/stream", params={"question": "hi", **ECHO}),
    Route("POST", "/api/v1/projects/{project}/chat-stream", body={"message": "hi", **ECHO}),
    Route("POST", "/api/v1/stream-tickets", body={"jobId": "{job}"}),
    Route("GET", "/api/v1/streams/{job}"),
    Route("POST", "/api/v1/streams/{job}/cancel"),
    Route("POST", "/api/v1/projects/{project}/documents", body={"name": "n.md", "content": "x"}),
    Route("GET", "/api/v1/projects/{project}/documents"),
    Route("DELETE", "/api/v1/projects/{project}/documents/{document}"),
    Route(
        "POST",
        "/v1/chat/completions",
        body={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
    ),
    Route("GET", "/v1/models"),
    Route("GET", "/v1/models/{model}"),
    Route("POST", "/api/v1/batch", body={"requests": [{"method": "GET", "path": "/healthz"}]}),
    Route("POST", "/api/batch", body={"requests": [{"method": "GET", "path": "/healthz"}]}),
)

JSON_ROUTES = tuple(route for route in ROUTES if route.body is not None)


def route_named(label: str) -> Route:
    return next(route for route in ROUTES if route.label == label)


def body_for(route: Route, world: World) -> dict[str, Any]:
    """The route's body with Alice's resources in it."""
    assert route.body is not None
    return json.loads(json.dumps(route.body).replace("{job}", world.job_id))


# Every id a route takes in its path.
PATH_SLOTS = ("session", "job", "project", "document", "model", "name")


def path_slot_cases() -> Iterator[Any]:
    """One pytest case per route and id in its path: (the route's label, the id's slot)."""
    for route in ROUTES:
        for slot in PATH_SLOTS:
            if "{" + slot + "}" in route.path:
                yield pytest.param(route.label, slot, id=f"{route.label} {slot}")
