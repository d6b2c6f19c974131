"""429 for too many jobs in flight (streams and completions alike) or requests, and 503 when the
broker cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway import appkeys
from gateway.app import create_app
from gateway.errors import ApiError
from gateway.limits import RATE_WINDOW_S, StreamLeases
from launcher.ports import free_port
from shared.names import Names
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, REDIS_URL, StackFactory, gateway_settings
from tests.support.chat import messages_of, slow_words
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
    assert await _lease_count_once(redis, names.user_streams("alice"), 0) == 0


async def _lease_count_once(redis: Redis, key: str, expected: int) -> int:
    """How many leases ``key`` holds once it holds ``expected``, or after a few seconds: a
    stream releases its lease after its last byte, so a client can see the end first, and a
    request's lease is taken some time after the request is sent."""
    for _ in range(100):
        count = int(await redis.zcard(key))
        if count == expected:
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


def _completion(text: str) -> dict[str, Any]:
    return {"model": "echo", "messages": [{"role": "user", "content": text}]}


def _is_job_cap_refusal(error: dict[str, Any], cap: int) -> bool:
    return error["code"] == "rate_limited" and error["details"] == {
        "limit": "MAX_STREAMS_PER_USER",
        "max": cap,
    }


async def test_a_completion_with_the_cap_reached_by_streams_gets_429_and_stores_nothing(
    make_stack: StackFactory,
) -> None:
    """Regression: the cap on open streams did not cover non-streaming completions, which
    stored their turn without a lease and held a job for up to COMPLETION_TIMEOUT_S each."""
    gateway = await make_stack(max_streams_per_user=2, worker={"echo_token_delay_ms": 200})
    redis = gateway.server.app[appkeys.REDIS]
    names = gateway.server.app[appkeys.SETTINGS].connections.names
    open_streams = []
    for _ in range(2):
        response = await gateway.post(
            "/api/v1/chat/stream", json={"text": slow_words(20), "pipeline": "echo"}, headers=AUTH
        )
        assert response.status == 200
        open_streams.append(response)
    sessions_before = await redis.zcard(names.user_sessions("alice"))
    refused = await gateway.post("/v1/chat/completions", json=_completion("hi"), headers=AUTH)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert _is_job_cap_refusal((await refused.json())["error"], cap=2)
    assert await redis.zcard(names.user_sessions("alice")) == sessions_before
    for response in open_streams:
        async for _ in iter_sse(response):
            pass
    assert await _lease_count_once(redis, names.user_streams("alice"), 0) == 0
    answered = await gateway.post("/v1/chat/completions", json=_completion("hi"), headers=AUTH)
    assert answered.status == 200


async def test_a_batch_of_twenty_completions_runs_at_most_the_cap_and_refuses_the_rest(
    make_stack: StackFactory,
) -> None:
    """Regression: a batch of 20 non-streaming completions all ran, past a cap of 5."""
    gateway = await make_stack(max_streams_per_user=5, worker={"echo_token_delay_ms": 100})
    redis = gateway.server.app[appkeys.REDIS]
    names = gateway.server.app[appkeys.SETTINGS].connections.names
    # Each job outlasts the batch's admissions, so that no slot frees up meanwhile.
    body = _completion(slow_words(40))
    requests = [
        {"id": i, "method": "POST", "path": "/v1/chat/completions", "body": body} for i in range(20)
    ]
    response = await gateway.post("/api/v1/batch", json={"requests": requests}, headers=AUTH)
    assert response.status == 200
    items = (await response.json())["data"]["responses"]
    answered = [item for item in items if item["status"] == 200]
    refused = [item for item in items if item["status"] != 200]
    assert 1 <= len(answered) <= 5
    assert all(item["status"] == 429 for item in refused)
    assert all(_is_job_cap_refusal(item["error"], cap=5) for item in refused)
    # One new session per completion that ran; the refused ones stored nothing.
    assert await redis.zcard(names.user_sessions("alice")) == len(answered)
    assert await _lease_count_once(redis, names.user_streams("alice"), 0) == 0


async def test_a_completions_lease_is_given_back_when_it_answers_or_times_out(
    make_stack: StackFactory,
) -> None:
    gateway = await make_stack(
        max_streams_per_user=1, completion_timeout_s=0.5, worker={"echo_token_delay_ms": 200}
    )
    answered = await gateway.post("/v1/chat/completions", json=_completion("hi"), headers=AUTH)
    assert answered.status == 200
    again = await gateway.post("/v1/chat/completions", json=_completion("hi"), headers=AUTH)
    assert again.status == 200
    timed_out = await gateway.post(
        "/v1/chat/completions", json=_completion(slow_words(30)), headers=AUTH
    )
    assert timed_out.status == 504
    assert (await timed_out.json())["error"]["code"] == "timeout"
    # Given back before the 504 went out: the one slot is free at once.
    after = await gateway.post(
        "/api/v1/chat/stream", json={"text": "after", "pipeline": "echo"}, headers=AUTH
    )
    assert after.status == 200
    await after.read()


async def test_a_completions_lease_is_given_back_when_its_client_leaves(
    make_stack: StackFactory,
) -> None:
    gateway = await make_stack(max_streams_per_user=1, worker={"echo_token_delay_ms": 200})
    redis = gateway.server.app[appkeys.REDIS]
    key = gateway.server.app[appkeys.SETTINGS].connections.names.user_streams("alice")
    waiting = asyncio.ensure_future(
        gateway.post("/v1/chat/completions", json=_completion(slow_words(100)), headers=AUTH)
    )
    assert await _lease_count_once(redis, key, 1) == 1
    blocked = await gateway.post(
        "/api/v1/chat/stream", json={"text": "blocked", "pipeline": "echo"}, headers=AUTH
    )
    assert blocked.status == 429
    # Cancelling the request closes its connection: the gateway cancels its handler.
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert await _lease_count_once(redis, key, 0) == 0
    freed = await gateway.post("/v1/chat/completions", json=_completion("hi"), headers=AUTH)
    assert freed.status == 200


async def test_a_reattach_holds_a_slot_of_its_own(make_stack: StackFactory) -> None:
    """The cap counts connections that wait on a job: a second connection to a job that one
    stream already relays is refused at a cap of one."""
    gateway = await make_stack(max_streams_per_user=1, worker={"echo_token_delay_ms": 200})
    first = await gateway.post(
        "/api/v1/chat/stream", json={"text": slow_words(20), "pipeline": "echo"}, headers=AUTH
    )
    assert first.status == 200
    job_id = first.headers["X-Job-Id"]
    again = await gateway.get(f"/api/v1/streams/{job_id}", headers=AUTH)
    assert again.status == 429
    assert _is_job_cap_refusal((await again.json())["error"], cap=1)
    async for _ in iter_sse(first):
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
