"""A turn's checks and writes (gateway/guarded_writes.py), on the real Redis, on a Redis Cluster
and on the embedded one (fakeredis with Lua, `make run`'s): the writes land only when every
check allows them, and the checks are judged in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from gateway.guarded_writes import Guard, SessionEntry, Verdict, write_if_allowed
from gateway.limits import LeaseClaim, RateHit, RateLimiter, StreamLeases
from shared.embedded import EmbeddedServers
from shared.names import Names
from shared.redis_client import (
    RedisClient,
    RedisPipeline,
    connect_redis,
    hash_reply,
    is_cluster,
)
from tests.conftest import cluster_connections, real_server_connections


@pytest.fixture(
    params=[pytest.param("real", marks=pytest.mark.real), "cluster", "embedded"],
)
async def redis(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[RedisClient]:
    if request.param == "real":
        client = connect_redis(real_server_connections(namespace))
    elif request.param == "cluster":
        client = connect_redis(
            cluster_connections(request.getfixturevalue("redis_cluster"), namespace)
        )
    else:
        client = EmbeddedServers().redis()
    yield client
    await client.aclose()


@pytest.fixture
def names(redis: RedisClient, namespace: str) -> Names:
    return Names(namespace, hash_tags=is_cluster(redis))


def _write_marker(
    names: Names, value: str, session_id: str = "s1"
) -> tuple[str, Callable[[RedisPipeline], None]]:
    """A write to a key of the session's slot."""
    key = names.session_messages(session_id)

    def stage(pipe: RedisPipeline) -> None:
        pipe.hset(key, mapping={"value": value, "userId": "alice"})
        pipe.hgetall(key)

    return key, stage


def _guard(
    names: Names,
    *,
    rate: RateHit | None = None,
    lease: LeaseClaim | None = None,
    session_id: str = "s1",
    new: bool = False,
) -> Guard:
    return Guard(
        user_id="alice",
        session=SessionEntry(
            key=names.session(session_id),
            session_id=session_id,
            index_key=names.user_sessions("alice"),
            score_ms=1,
            new=new,
        ),
        rate=rate,
        lease=lease,
    )


async def test_every_check_that_allows_lets_the_writes_land_with_their_replies(
    redis: RedisClient, names: Names
) -> None:
    await redis.hset(names.session("s1"), mapping={"userId": "alice"})
    await redis.zadd(names.user_sessions("alice"), {"s1": 0})
    leases = StreamLeases(redis, names, max_streams=1, lease_s=30)
    key, stage = _write_marker(names, "written")
    guard = _guard(
        names,
        rate=RateLimiter(redis, names, per_minute=5).new_hit("alice"),
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
    # The session moves up the user's listing.
    assert await redis.zscore(names.user_sessions("alice"), "s1") == 1


async def test_a_new_session_is_filed_in_its_users_index(redis: RedisClient, names: Names) -> None:
    _, stage = _write_marker(names, "written", "s2")
    outcome = await write_if_allowed(redis, _guard(names, session_id="s2", new=True), stage)
    assert outcome.verdict is Verdict.WRITTEN
    assert await redis.zscore(names.user_sessions("alice"), "s2") == 1


@pytest.mark.parametrize("refusal", ["rate", "session", "lease"])
async def test_a_refusal_writes_nothing_and_holds_no_lease(
    redis: RedisClient, names: Names, refusal: str
) -> None:
    rate = RateLimiter(redis, names, per_minute=0 if refusal == "rate" else 5).new_hit("alice")
    # Bob's session, or Alice's.
    await redis.hset(
        names.session("s1"), mapping={"userId": "bob" if refusal == "session" else "alice"}
    )
    leases = StreamLeases(redis, names, max_streams=1, lease_s=30)
    if refusal == "lease":
        await leases.acquire("alice", "already-open")
    key, stage = _write_marker(names, "refused")
    guard = _guard(names, rate=rate, lease=leases.claim("alice", "stream-1"))
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
    # Another user's session is never filed in Alice's index.
    assert await redis.zscore(names.user_sessions("alice"), "s1") is None


async def test_a_session_that_does_not_exist_is_refused(redis: RedisClient, names: Names) -> None:
    key, stage = _write_marker(names, "refused")
    outcome = await write_if_allowed(redis, _guard(names), stage)
    assert outcome.verdict is Verdict.NO_SESSION
    assert outcome.count is None
    assert await redis.exists(key) == 0


async def test_replies_come_back_as_redis_gives_them(redis: RedisClient, names: Names) -> None:
    """Lua turns a status reply into a table and back, and a missing value into false and back
    into nil: the caller sees what the commands would have answered by themselves."""
    key = names.session_messages("s2")

    def stage(pipe: RedisPipeline) -> None:
        pipe.set(key, "v")
        pipe.get(names.session_summary("s2"))
        pipe.get(key)

    outcome = await write_if_allowed(redis, _guard(names, session_id="s2", new=True), stage)
    assert outcome.verdict is Verdict.WRITTEN
    assert outcome.count is None
    assert outcome.replies == [b"OK", None, b"v"]


async def test_another_users_session_is_told_before_a_full_lease_set(
    redis: RedisClient, names: Names
) -> None:
    """404 comes before 429: a turn into a session that is not the caller's will never
    succeed, however long it waits for a lease."""
    await redis.hset(names.session("s1"), mapping={"userId": "bob"})
    leases = StreamLeases(redis, names, max_streams=1, lease_s=30)
    await leases.acquire("alice", "already-open")
    _, stage = _write_marker(names, "refused")
    outcome = await write_if_allowed(
        redis, _guard(names, lease=leases.claim("alice", "stream-1")), stage
    )
    assert outcome.verdict is Verdict.NO_SESSION
