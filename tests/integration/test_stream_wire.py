"""A stream's bytes on the wire, read off a bare socket: over HTTP/1.1 a well-formed chunked
body that ends with the job's `end` and the last chunk; over HTTP/1.0, where nothing is chunked,
the plain event stream until the gateway closes. Every seq once, in order, either way."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from tests.conftest import API_KEY, StackFactory
from tests.support.sse import parse_sse

WORDS = 30
# Tokens apart, so that most reach a relay that waits for them.
TOKEN_DELAY_MS = 5


def strict_dechunk(body: bytes) -> bytes:
    """The data of a chunked body, asserting every chunk's framing and the last chunk."""
    data = b""
    while True:
        size_line, sep, body = body.partition(b"\r\n")
        assert sep, "a chunk's size line is cut off"
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n", "the last chunk ends the body"
            return data
        assert body[size : size + 2] == b"\r\n", "a chunk is not followed by CRLF"
        data += body[:size]
        body = body[size + 2 :]


async def raw_stream(port: int, version: bytes, text: str) -> tuple[bytes, bytes]:
    """POST a chat stream on a bare socket; the response's head and body, read to the close."""
    body = json.dumps({"text": text, "pipeline": "echo"}).encode()
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(
            sock,
            b"POST /api/v1/chat/stream HTTP/%s\r\nHost: test\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (version, API_KEY.encode(), len(body), body),
        )
        raw = b""
        async with asyncio.timeout(60):
            while chunk := await loop.sock_recv(sock, 65536):
                raw += chunk
    finally:
        sock.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
async def test_a_stream_on_the_wire_is_whole_and_well_formed(
    make_stack: StackFactory, version: bytes
) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": TOKEN_DELAY_MS})
    text = " ".join(f"w{i}" for i in range(WORDS))
    head, body = await raw_stream(gateway.port or 0, version, text)
    assert head.startswith(b"HTTP/%s 200" % version), head
    chunked = b"transfer-encoding: chunked" in head.lower()
    assert chunked == (version == b"1.1")
    stream = strict_dechunk(body) if chunked else body
    events = [m for m in parse_sse(stream) if m.id is not None]
    assert [int(m.id or 0) for m in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "end"
    assert events[-1].json["content"] == text
    assert "".join(m.json["content"] for m in events if m.type == "token") == text
