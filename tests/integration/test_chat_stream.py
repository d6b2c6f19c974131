"""POST /api/v1/chat/stream end to end, on the embedded transports and on the real servers."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import appkeys
from shared.events import PROGRESS_STEPS
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory, WorkerFactory
from tests.support.chat import create_session, messages_of
from tests.support.sse import data_events, iter_sse, job_events, parse_sse

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too

Client = TestClient[web.Request, web.Application]

FRAME = re.compile(rb"id: (\d+)\ndata: (\{[^\n]*\})\n\n")


async def post_stream(client: Client, text: str, **extra: object) -> bytes:
    response = await client.post(
        "/api/v1/chat/stream", json={"text": text, "pipeline": "echo", **extra}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    return await response.read()


async def test_echo_stream_sends_start_steps_tokens_and_end_in_order(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream",
        json={"text": "hello   streaming\n world", "pipeline": "echo"},
        headers=AUTH,
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    job_id = response.headers["X-Job-Id"]
    session_id = response.headers["X-Session-Id"]
    messages = parse_sse(await response.read())

    assert messages[0].retry is not None and not messages[0].data
    assert messages[1].event == "snapshot" and messages[1].id is None
    snapshot = messages[1].json
    assert snapshot["type"] == "snapshot" and snapshot["session"]["id"] == session_id
    assert [m["role"] for m in snapshot["messages"]] == ["user", "assistant"]
    events = job_events(messages)
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "end"
    assert events[0]["jobId"] == job_id and events[0]["sessionId"] == session_id
    steps = [e["progress"]["step"] for e in events if e["type"] == "progress"]
    assert steps == list(PROGRESS_STEPS)
    tokens = [e for e in events if e["type"] == "token"]
    assert [t["content"] for t in tokens] == ["hello", " streaming", " world"]
    assert all(t["delta"] == t["content"] and t["done"] is False for t in tokens)
    end = events[-1]
    assert end["content"] == "hello streaming world" == "".join(t["content"] for t in tokens)
    assert end["done"] is True and end["delta"] == "" and end["finishReason"] == "stop"
    assert end["messageId"] == events[0]["messageId"]
    assert end["usage"]["tokens"] == 3
    ids = [int(m.id) for m in messages if m.id is not None]
    assert ids == list(range(1, len(events) + 1))


async def test_stream_bytes_are_retry_then_id_and_one_line_of_json(gateway: Client) -> None:
    raw = await post_stream(gateway, "exact bytes")
    assert raw.startswith(b"retry: 2000\n\nevent: snapshot\ndata: {")
    opening, _, body = raw.partition(b"}\n\n")
    assert b"\n" not in opening[len(b"retry: 2000\n\nevent: snapshot\ndata: ") :]
    frames = FRAME.findall(body)
    assert b"".join(b"id: %s\ndata: %s\n\n" % f for f in frames) == body
    assert [int(seq) for seq, _ in frames] == list(range(1, len(frames) + 1))
    assert frames[-1][1].startswith(b'{"type":"end"')


async def test_heartbeats_flow_between_tokens_of_a_slow_job(
    connections, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    gateway = await start_gateway(
        connections, heartbeat_interval_s=0.05, worker={"echo_token_delay_ms": 120}
    )
    if not connections.embedded:
        await start_worker(connections, echo_token_delay_ms=120)
    messages = parse_sse(await post_stream(gateway, "one two three four"))
    kinds = [m.type for m in messages if m.data]
    first_token, last_token = kinds.index("token"), len(kinds) - 1 - kinds[::-1].index("token")
    between = kinds[first_token:last_token]
    assert between.count("heartbeat") >= 2
    heartbeats = [m for m in messages if m.type == "heartbeat"]
    assert all(m.id is None for m in heartbeats)
    assert {m.json["phase"] for m in heartbeats} <= {"queued", "running"}
    assert heartbeats[-1].json["phase"] == "running"
    assert "timestamp" in heartbeats[-1].json


async def test_fifty_concurrent_streams_each_get_their_own_answer(gateway: Client) -> None:
    texts = [f"stream number {i} says hello" for i in range(50)]
    bodies = await asyncio.gather(*(post_stream(gateway, text) for text in texts))
    for text, raw in zip(texts, bodies, strict=True):
        end = data_events(parse_sse(raw))[-1]
        assert end["type"] == "end" and end["content"] == text


async def test_request_id_is_echoed_and_generated(gateway: Client) -> None:
    given = await gateway.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = await gateway.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])


async def test_a_live_stream_can_be_read_event_by_event(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "live read", "pipeline": "echo"}, headers=AUTH
    )
    seen = [m.type async for m in iter_sse(response) if m.data]
    assert seen[:2] == ["snapshot", "start"] and seen[-1] == "end"


async def test_the_opening_snapshot_is_the_conversation_as_stored(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    # No worker: each job waits in the queue, so the conversation stays as its turn left it.
    gateway = await start_gateway(real_connections)
    existing = await create_session(gateway, title="Earlier")
    for conversation_id in (None, existing, existing):
        body = {"text": " a  question ", "pipeline": "echo"}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        response = await gateway.post("/api/v1/chat/stream", json=body, headers=AUTH)
        assert response.status == 200
        snapshot = await anext(m.json async for m in iter_sse(response) if m.event == "snapshot")
        response.close()
        session_id = response.headers["X-Session-Id"]
        stored = await gateway.get(f"/api/v1/sessions/{session_id}", headers=AUTH)
        assert snapshot["session"] == await stored.json()
        assert snapshot["messages"] == await messages_of(gateway, session_id)
    assert snapshot["session"]["messageCount"] == 4
    assert [m["content"] for m in snapshot["messages"]] == ["a  question", "", "a  question", ""]


async def test_a_turn_whose_subscription_fails_ends_as_an_error_not_streaming(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    """The turn is stored while its stream subscribes. When the subscription fails (here the
    gateway's pub/sub link is closing), the job is never sent: the answer is an error, not a
    message streaming forever, and the stream's lease is given back."""
    gateway = await start_gateway(real_connections)
    session_id = await create_session(gateway)
    app = gateway.server.app
    await app[appkeys.FANOUT].close()
    response = await gateway.post(
        f"/api/v1/sessions/{session_id}/messages/stream",
        json={"content": "anyone there?", "pipeline": "echo"},
        headers={**AUTH, "X-Request-ID": "unsubscribed-turn"},
    )
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "unavailable"
    stored = await messages_of(gateway, session_id)
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "complete"),
        ("assistant", "error"),
    ]
    names = app[appkeys.SETTINGS].connections.names
    leases = names.user_streams("alice")
    assert await app[appkeys.REDIS].zscore(leases, "unsubscribed-turn") is None
