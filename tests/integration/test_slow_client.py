"""A client that stops reading while a long answer streams: the gateway's memory for it stays
within its budget, and the client ends with either merged frames or a clean close it can
resume from, having lost nothing. Small socket buffers on both ends of this one connection stand
in for a slow link, so the gateway really meets backpressure; the merging and the cut
themselves are also pinned by tests/unit/test_client_stream.py."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from gateway import appkeys
from tests.conftest import API_KEY, AUTH, StackFactory
from tests.support.chat import messages_of
from tests.support.chunked import dechunk as dechunk_body
from tests.support.sse import parse_sse

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too

# Room for the rest of a long answer replayed at once: its tokens merged, plus its `end`.
BUDGET_BYTES = 64 * 1024


def dechunk(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response (possibly cut off)."""
    return dechunk_body(raw.partition(b"\r\n\r\n")[2])


async def test_a_client_that_reads_nothing_costs_bounded_memory_and_loses_nothing(
    make_stack: StackFactory,
) -> None:
    gateway = await make_stack(
        slow_client_buffer_bytes=BUDGET_BYTES, send_timeout_s=1.0, worker={"echo_token_delay_ms": 0}
    )
    # The most tokens a message can carry: 8,000 one-letter words, about half a megabyte of
    # frames, far more than the socket buffers on the way hold.
    words = 8000
    text = " ".join(["a"] * words)
    sid = (await (await gateway.post("/api/v1/sessions", json={}, headers=AUTH)).json())["id"]
    body = json.dumps({"content": text, "pipeline": "echo"}).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", gateway.port or 0))
    # A slow link: shrink the server side's send buffer of this very connection too (found by
    # its peer address), so that backpressure reaches the gateway after a few kilobytes rather
    # than after the kernel's megabytes.
    ours = sock.getsockname()
    server_socket = None
    for _ in range(200):
        for protocol in gateway.server.handler.connections:  # type: ignore[union-attr]
            if protocol.transport and protocol.transport.get_extra_info("peername") == ours:
                server_socket = protocol.transport.get_extra_info("socket")
        if server_socket is not None:
            break
        await asyncio.sleep(0.01)
    assert server_socket is not None
    server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    # A bare socket, read by nobody until the end (an asyncio stream would read ahead for it).
    await loop.sock_sendall(
        sock,
        b"POST /api/v1/sessions/%s/messages/stream HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (sid.encode(), API_KEY.encode(), len(body), body),
    )
    fanout = gateway.app[appkeys.FANOUT]
    peak = 0
    for _ in range(600):  # while the answer streams and the client reads nothing
        for s in fanout.subscribers():
            peak = max(peak, s.buffered_bytes)  # type: ignore[attr-defined]
        stored = await messages_of(gateway, sid)
        if len(stored) == 2 and stored[1]["status"] != "streaming":
            break
        await asyncio.sleep(0.02)
    assert stored[1]["status"] == "complete"
    assert peak <= BUDGET_BYTES + len(text) + 1024  # the budget, or one `end` frame alone
    raw = b""
    while chunk := await loop.sock_recv(sock, 65536):
        raw += chunk
    sock.close()
    received = [m for m in parse_sse(dechunk(raw)) if m.id is not None]
    seqs = [int(m.id or 0) for m in received]
    assert seqs == sorted(set(seqs))
    tokens = [m.json["content"] for m in received if m.type == "token"]
    if received and received[-1].type == "end":
        # Merged frames, or (when loopback's buffers absorbed the whole answer) every frame.
        assert len(tokens) <= words
    else:
        # It was cut: it resumes after the last id it has and completes the answer.
        last = seqs[-1] if seqs else 0
        resumed = await gateway.get(f"/api/v1/sessions/{sid}/messages", headers=AUTH)
        job_id = (await resumed.json())["messages"][1]["jobId"]
        rest = await gateway.get(
            f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": str(last)}
        )
        tail = [m for m in parse_sse(await rest.read()) if m.id is not None]
        # Merged token frames carry the last seq they merged, so ids rise but may skip.
        tail_seqs = [int(m.id or 0) for m in tail]
        assert tail_seqs == sorted(set(tail_seqs)) and tail_seqs[0] > last
        tokens += [m.json["content"] for m in tail if m.type == "token"]
        assert tail[-1].type == "end"
    assert "".join(tokens) == text
