"""A turn's checks and writes in one script (gateway/guarded_writes.py), on the real Redis and on
the embedded one (fakeredis with Lua, `make run`'s): the writes land only when every check
allows them, and the checks are judged in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.guarded_writes import Guard, SessionOwner, Verdict, hash_reply, write_if_allowed
from gateway.limits import RateLimiter, StreamLeases
from shared.embedded import EmbeddedServers
from shared.names import Names
from shared.redis_client import connect_redis
from tests.conftest import real_server_connections


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.real), "embedded"])
async def redis(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Redis]:
    client = (
        connect_redis(real_server_connections(namespace))
        if request.param == "real"
        else EmbeddedServers().redis()
    )
    yield client
    await client.aclose()


def _write_marker(names: Names, value: str) -> tuple[str, Callable[[Pipeline], None]]:
    key = f"{names.namespace}:marker"

    def stage(pipe: Pipeline) -> None:
        pipe.hset(key, mapping={"value": value, "userId": "alice"})
        pipe.hgetall(key)

    return key, stage


async def test_every_check_that_allows_lets_the_writes_land_with_their_replies(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    await redis.hset(names.session("s1"), mapping={"userId": "alice"})
    leases = StreamLeases(redis, names, max_streams=1, lease_s=30)
    key, stage = _write_marker(names, "written")
    guard = Guard(
        rate=RateLimiter(redis, names, per_minute=5).new_hit("alice"),
        session=SessionOwner(names.session("s1"), "alice"),
        lease=leases.claim("alice", "stream-1"),
    )
    outcome = await write_if_allowed(redis, guard, stage)
    assert outcome.verdict is Verdict.WRITTEN
    assert outcome.count == 1
    written, fields = outcome.replies
    assert written == 2
    assert hash_reply(fields) == {b"value": b"written", b"userId": b"alice"}
    assert await redis.hget(key, "value") == b"written"
    assert await redis.zscore(names.user_streams("alice"), "stream-1") is not None


@pytest.mark.parametrize("refusal", ["rate", "session", "lease"])
async def test_a_refusal_writes_nothing_and_takes_no_later_check(
    redis: Redis, namespace: str, refusal: str
) -> None:
    names = Names(namespace)
    rate = RateLimiter(redis, names, per_minute=0 if refusal == "rate" else 5).new_hit("alice")
    # Bob's session, or Alice's.
    await redis.hset(
        names.session("s1"), mapping={"userId": "bob" if refusal == "session" else "alice"}
    )
    leases = StreamLeases(redis, names, max_streams=1, lease_s=30)
    if refusal == "lease":
        await leases.acquire("alice", "already-open")
    key, stage = _write_marker(names, "refused")
    guard = Guard(
        rate=rate,
        session=SessionOwner(names.session("s1"), "alice"),
        lease=leases.claim("alice", "stream-1"),
    )
    outcome = await write_if_allowed(redis, guard, stage)
    expected = {
        "rate": Verdict.RATE_LIMITED,
        "session": Verdict.NO_SESSION,
        "lease": Verdict.NO_LEASE,
    }[refusal]
    assert outcome.verdict is expected
    assert outcome.replies == []
    # The hit counts, refused or not (as a refused request does).
    assert outcome.count == 1
    assert await redis.exists(key) == 0
    assert await redis.zscore(names.user_streams("alice"), "stream-1") is None


async def test_a_session_that_does_not_exist_is_refused(redis: Redis, namespace: str) -> None:
    names = Names(namespace)
    key, stage = _write_marker(names, "refused")
    guard = Guard(session=SessionOwner(names.session("no-such-session"), "alice"))
    outcome = await write_if_allowed(redis, guard, stage)
    assert outcome.verdict is Verdict.NO_SESSION
    assert outcome.count is None
    assert await redis.exists(key) == 0


async def test_replies_come_back_as_redis_gives_them(redis: Redis, namespace: str) -> None:
    """Lua turns a status reply into a table and back, and a missing value into false and back
    into nil: the caller sees what the commands would have answered by themselves."""
    key = f"{namespace}:value"

    def stage(pipe: Pipeline) -> None:
        pipe.set(key, "v")
        pipe.get(f"{namespace}:missing")
        pipe.get(key)

    outcome = await write_if_allowed(redis, Guard(), stage)
    assert outcome.verdict is Verdict.WRITTEN
    assert outcome.count is None
    assert outcome.replies == [b"OK", None, b"v"]
