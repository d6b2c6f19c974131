"""429 for too many open streams or requests, and 503 when the broker cannot be reached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway import appkeys
from gateway.app import create_app
from gateway.errors import ApiError
from gateway.limits import RATE_WINDOW_S, StreamLeases
from shared.names import Names
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, REDIS_URL, StackFactory, gateway_settings
from tests.support.chat import messages_of
from tests.support.processes import free_port
from tests.support.sse import iter_sse


async def test_open_streams_past_the_limit_get_429_with_retry_after(
    make_stack: StackFactory,
) -> None:
    gateway = await make_stack(max_streams_per_user=2, worker={"echo_token_delay_ms": 200})
    open_streams = []
    for _ in range(2):
        response = await gateway.post(
            "/api/v1/chat/stream", json={"text": "a b c d e f", "pipeline": "echo"}, headers=AUTH
        )
        assert response.status == 200
        open_streams.append(response)
    refused = await gateway.post(
        "/api/v1/chat/stream", json={"text": "one more", "pipeline": "echo"}, headers=AUTH
    )
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]["code"] == "rate_limited"
    for response in open_streams:
        async for _ in iter_sse(response):
            pass
    again = await gateway.post(
        "/api/v1/chat/stream", json={"text": "now fine", "pipeline": "echo"}, headers=AUTH
    )
    assert again.status == 200
    await again.read()


async def _within_one_rate_window(needed_s: float = 5.0) -> None:
    """The rate limit's window is a fixed minute: a burst that crossed into the next one would
    start counting again. Wait for the next window when fewer than ``needed_s`` are left."""
    left_s = RATE_WINDOW_S - time.time() % RATE_WINDOW_S
    if left_s < needed_s:
        await asyncio.sleep(left_s + 0.05)


async def test_requests_past_the_rate_get_429(make_stack: StackFactory) -> None:
    gateway = await make_stack(rate_limit_per_minute=5)
    await _within_one_rate_window()
    statuses = [(await gateway.get("/api/v1/sessions", headers=AUTH)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = await gateway.get("/api/v1/sessions", headers=AUTH)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


async def test_an_unreachable_broker_answers_503_with_retry_after_not_a_hang(
    namespace: str, aiohttp_client: object
) -> None:
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    connections = ConnectionSettings(
        redis_url=REDIS_URL, amqp_url=closed, namespace=namespace, connect_timeout_s=0.5
    )
    client = await aiohttp_client(create_app(gateway_settings(connections)))  # type: ignore[operator]
    timeout = aiohttp.ClientTimeout(total=5)
    response = await client.post(
        "/api/v1/chat/stream", json={"text": "anyone?"}, headers=AUTH, timeout=timeout
    )
    assert response.status == 503
    assert response.headers["Retry-After"]
    assert (await response.json())["error"]["code"] == "unavailable"
    ready = await client.get("/readyz", timeout=timeout)
    assert ready.status == 503
    assert (await ready.json())["error"]["details"]["checks"]["queue"] is False


async def test_a_stream_refused_for_too_many_open_streams_stores_no_streaming_message(
    make_stack: StackFactory,
) -> None:
    """Regression: the turn was stored before the lease was taken, so a 429 left an assistant
    message `streaming` with no job behind it (and a new session with nothing in it)."""
    gateway = await make_stack(max_streams_per_user=1, worker={"echo_token_delay_ms": 200})
    sid = (await (await gateway.post("/api/v1/sessions", json={}, headers=AUTH)).json())["id"]
    open_stream = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "a b c d e f", "pipeline": "echo"},
        headers=AUTH,
    )
    assert open_stream.status == 200
    sessions_before = await (await gateway.get("/api/v1/sessions", headers=AUTH)).json()
    for path, body in [
        (f"/api/v1/sessions/{sid}/messages/stream", {"content": "one more", "pipeline": "echo"}),
        ("/api/v1/chat/stream", {"text": "and in a new session", "pipeline": "echo"}),
    ]:
        refused = await gateway.post(path, json=body, headers=AUTH)
        assert refused.status == 429
        assert refused.headers["Content-Type"].startswith("application/json")
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error"]["code"] == "rate_limited"
    async for _ in iter_sse(open_stream):
        pass
    stored = await messages_of(gateway, sid)
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    sessions_after = await (await gateway.get("/api/v1/sessions", headers=AUTH)).json()
    assert [s["id"] for s in sessions_after["sessions"]] == [
        s["id"] for s in sessions_before["sessions"]
    ]


async def test_chat_turns_count_against_the_rate_whether_or_not_they_start(
    make_stack: StackFactory,
) -> None:
    """A turn takes its rate-limit hit in the round trip that takes its stream's lease. One
    refused before that (422) still counts; past the limit a turn gets 429, whatever its body,
    and leaves nothing behind: no session, no message, no lease."""
    gateway = await make_stack(rate_limit_per_minute=3)
    await _within_one_rate_window()
    started = await gateway.post(
        "/api/v1/chat/stream", json={"text": "first", "pipeline": "echo"}, headers=AUTH
    )
    assert started.status == 200
    await started.read()
    invalid = await gateway.post("/api/v1/chat/stream", json={"text": "  "}, headers=AUTH)
    assert invalid.status == 422
    listed = await gateway.get("/api/v1/sessions", headers=AUTH)
    assert listed.status == 200
    bodies = {"refused-valid": {"text": "past the limit", "pipeline": "echo"}}
    bodies["refused-invalid"] = {"text": "  "}
    for request_id, body in bodies.items():
        headers = {**AUTH, "X-Request-ID": request_id}
        refused = await gateway.post("/api/v1/chat/stream", json=body, headers=headers)
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error"]["code"] == "rate_limited"
    redis = gateway.server.app[appkeys.REDIS]
    names = gateway.server.app[appkeys.SETTINGS].connections.names
    assert await redis.zcard(names.user_sessions("alice")) == 1
    # The refused turns took no lease; the one that streamed gives its own back as it ends.
    assert await _leases_once_released(redis, names.user_streams("alice")) == 0


async def _leases_once_released(redis: Redis, key: str) -> int:
    """How many leases ``key`` holds once the streams that ended have given theirs back (a
    stream releases its lease after its last byte, so a client can see the end first)."""
    for _ in range(50):
        count = int(await redis.zcard(key))
        if count == 0:
            return count
        await asyncio.sleep(0.1)
    return count


async def test_streams_that_share_a_request_id_hold_a_lease_each(
    make_stack: StackFactory,
) -> None:
    """A stream's lease is named by the gateway, not by the request id a client may choose: two
    streams sent with one X-Request-ID are two open streams, and a refused turn with that id
    does not free the slot of the stream that holds it."""
    gateway = await make_stack(max_streams_per_user=1, worker={"echo_token_delay_ms": 200})
    headers = {**AUTH, "X-Request-ID": "the-same-id"}
    held = await gateway.post(
        "/api/v1/chat/stream", json={"text": "a b c d e f", "pipeline": "echo"}, headers=headers
    )
    assert held.status == 200
    missing = await gateway.post(
        "/api/v1/chat/stream",
        json={"text": "hi", "conversation_id": str(uuid.uuid4())},
        headers=headers,
    )
    assert missing.status == 404
    second = await gateway.post(
        "/api/v1/chat/stream", json={"text": "one more", "pipeline": "echo"}, headers=headers
    )
    assert second.status == 429
    async for _ in iter_sse(held):
        pass


SHORT_LEASE_S = 1.5


@pytest.fixture
async def leases(real_connections: ConnectionSettings) -> AsyncIterator[tuple[StreamLeases, Redis]]:
    redis = connect_redis(real_connections)
    leases = StreamLeases(redis, real_connections.names, max_streams=1, lease_s=SHORT_LEASE_S)
    leases.start()
    yield leases, redis
    await leases.close()
    await redis.aclose()


@pytest.mark.real
async def test_a_held_lease_outlives_its_first_expiry_and_is_gone_once_released(
    leases: tuple[StreamLeases, Redis], namespace: str
) -> None:
    stream_leases, redis = leases
    key = Names(namespace).user_streams("alice")
    await stream_leases.acquire("alice", "stream-1")
    stream_leases.hold("alice", "stream-1")
    # Past the lease it was taken with: only the gateway's renewals keep it.
    await asyncio.sleep(3 * SHORT_LEASE_S)
    score = await redis.zscore(key, "stream-1")
    assert score is not None and score > time.time()
    assert await redis.ttl(key) > 0
    with pytest.raises(ApiError) as refused:
        await stream_leases.acquire("alice", "stream-2")
    assert refused.value.status == 429
    await stream_leases.release("alice", "stream-1")
    assert await redis.zscore(key, "stream-1") is None
    await stream_leases.acquire("alice", "stream-2")


@pytest.mark.real
async def test_a_lease_not_held_lapses_after_one_lease(
    leases: tuple[StreamLeases, Redis],
) -> None:
    """What frees the slots of a gateway that died: nobody renews its leases."""
    stream_leases, _ = leases
    await stream_leases.acquire("alice", "stream-1")
    await asyncio.sleep(SHORT_LEASE_S + 0.5)
    await stream_leases.acquire("alice", "stream-2")
