"""The stores, the event log, the stall breaker, the cancel broadcast and the memory step on a
local Redis Cluster (3 primaries, 3 replicas): every script and transaction runs on keys of
one slot (a cross-slot one would raise), and each does what it does on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from gateway.cancel import JobCanceller
from gateway.guarded_writes import Guard, SessionEntry, Verdict, write_if_allowed
from gateway.stalls import StallBreaker
from launcher.local_redis import LocalRedisCluster
from shared import events, redis_scripts, replay_log
from shared.ids import new_job_id, new_scoped_id
from shared.messages import STATUS_COMPLETE, STATUS_ERROR, MessageStore, StoredTurn
from shared.names import Names
from shared.redis_client import RedisPipeline
from shared.sessions import SessionConflictError, SessionStore, new_session
from shared.settings import EventLogSettings
from tests.support.redis_cluster import cluster_client, cluster_names
from tests.support.redis_keys import namespace_keys
from worker.event_log import JobEventLog
from worker.pipelines.rag.memory import remember


@pytest.fixture
async def cluster(
    redis_cluster: LocalRedisCluster, namespace: str
) -> AsyncIterator[tuple[RedisCluster, Names]]:
    redis = cluster_client(redis_cluster, namespace)
    # Its slot map, for the test's own subscriptions (a command would load it too).
    await redis.initialize()
    try:
        yield redis, cluster_names(redis_cluster, namespace)
    finally:
        await redis.aclose()


async def sharded_messages(pubsub: ClusterPubSub, count: int) -> list[bytes]:
    """The next ``count`` messages of the pubsub's sharded channels."""
    heard: list[bytes] = []
    async with asyncio.timeout(10):
        while len(heard) < count:
            message = await pubsub.get_sharded_message(timeout=1.0)
            if message is not None and message["type"] == "smessage":
                heard.append(message["data"])
    return heard


async def store_turn(
    redis: RedisCluster, names: Names, user_id: str, session_id: str, *, new: bool
) -> StoredTurn:
    turn = StoredTurn(
        session_id=session_id,
        user_id=user_id,
        job_id=new_job_id(session_id, in_session_slot=True),
        user_message_id=new_scoped_id(session_id),
        assistant_message_id=new_scoped_id(session_id),
        text="hello",
    )
    sessions, messages = SessionStore(redis, names), MessageStore(redis, names)
    guard = Guard(
        user_id=user_id,
        session=SessionEntry(
            key=names.session(session_id),
            session_id=session_id,
            index_key=names.user_sessions(user_id),
            score_ms=turn.created_at_ms,
            new=new,
        ),
    )

    def stage(pipe: RedisPipeline) -> None:
        if new:
            sessions.stage_create(pipe, new_session(user_id, "a title", session_id))
        messages.stage_turn(pipe, turn)

    outcome = await write_if_allowed(redis, guard, stage)
    assert outcome.verdict is Verdict.WRITTEN
    assert await sessions.get(user_id, session_id) is not None
    return turn


async def test_a_conversation_lives_and_dies_on_a_cluster(
    cluster: tuple[RedisCluster, Names],
) -> None:
    redis, names = cluster
    sessions, messages = SessionStore(redis, names), MessageStore(redis, names)
    session, created = await sessions.create("alice", "77", "first")
    assert created
    with pytest.raises(SessionConflictError):
        await sessions.create("bob", "77", None)
    # Bob's failed claim leaves nothing in his listing, and an entry there that is not his
    # (a step that stopped halfway) lists nothing.
    assert (await sessions.page("bob", 10, None))[0] == []
    await redis.zadd(names.user_sessions("bob"), {"77": 1})
    assert (await sessions.page("bob", 10, None))[0] == []
    await redis.zrem(names.user_sessions("bob"), "77")
    turn = await store_turn(redis, names, "alice", session.id, new=False)

    def settle(pipe: RedisPipeline) -> None:
        messages.stage_settle(
            pipe,
            message_id=turn.assistant_message_id,
            session_id=session.id,
            user_id="alice",
            status=STATUS_COMPLETE,
            content="the answer",
        )

    await redis_scripts.run_staged(redis, settle)
    listed = await messages.of_session(session.id)
    assert [(m.role, m.content, m.status) for m in listed] == [
        ("user", "hello", STATUS_COMPLETE),
        ("assistant", "the answer", STATUS_COMPLETE),
    ]
    renamed = await sessions.rename("alice", session.id, "renamed")
    assert renamed is not None and renamed.title == "renamed"
    assert await sessions.rename("bob", session.id, "stolen") is None
    page, _ = await sessions.page("alice", 10, None)
    assert [s.title for s in page] == ["renamed"]
    assert await sessions.delete("alice", session.id) == []
    assert await namespace_keys(redis, names) == set()


async def test_a_turn_abandoned_ends_its_answer_in_an_error(
    cluster: tuple[RedisCluster, Names],
) -> None:
    redis, names = cluster
    messages = MessageStore(redis, names)
    turn = await store_turn(redis, names, "alice", "88", new=True)
    await messages.abandon_turn(turn)
    answer = await messages.get(turn.assistant_message_id)
    assert answer is not None and answer.status == STATUS_ERROR
    assert await redis.hget(names.job_meta(turn.job_id), "status") == b"ended"


async def test_events_land_in_the_log_and_go_out_on_the_shard(
    cluster: tuple[RedisCluster, Names],
) -> None:
    redis, names = cluster
    job_id = new_job_id("99", in_session_slot=True)
    pubsub = redis.pubsub()
    await pubsub.ssubscribe(names.job_channel(job_id))
    try:
        log = JobEventLog(redis, names, EventLogSettings(), job_id)
        await log.emit(events.START, {"jobId": job_id})
        for i in range(30):
            await log.emit(events.TOKEN, events.token_payload(f"t{i}"))
        await log.flush()
        heard = [events.decode_event(data).seq for data in await sharded_messages(pubsub, 31)]
    finally:
        await pubsub.aclose()
    assert heard == list(range(1, 32))
    logged = await replay_log.read_after(redis, names, job_id, 0)
    assert [e.seq for e in logged] == list(range(1, 32))


async def test_a_stalled_job_is_ended_on_its_slot(cluster: tuple[RedisCluster, Names]) -> None:
    redis, names = cluster
    turn = await store_turn(redis, names, "alice", "66", new=True)
    breaker = StallBreaker(redis, names, EventLogSettings())
    assert await breaker.fail(turn.job_id, turn.assistant_message_id, 0, 30.0)
    # Seq 1 is taken now: a second ending is refused.
    assert not await breaker.fail(turn.job_id, turn.assistant_message_id, 0, 30.0)
    last = await replay_log.last_event(redis, names, turn.job_id)
    assert last is not None and last.type == events.ERROR


async def test_a_cancel_sets_the_flag_and_reaches_the_workers_shard(
    cluster: tuple[RedisCluster, Names],
) -> None:
    redis, names = cluster
    job_id = new_job_id("55", in_session_slot=True)
    pubsub = redis.pubsub()
    await pubsub.ssubscribe(names.cancel_channel)
    try:
        await JobCanceller(redis, names).cancel(job_id)
        assert await sharded_messages(pubsub, 1) == [job_id.encode()]
    finally:
        await pubsub.aclose()
    assert await redis.exists(names.job_cancel_flag(job_id)) == 1


async def test_memory_is_kept_in_the_sessions_and_the_projects_slots(
    cluster: tuple[RedisCluster, Names],
) -> None:
    redis, names = cluster
    turn = await store_turn(redis, names, "alice", "44", new=True)
    update = await remember(
        redis,
        names,
        session_id="44",
        message_id=turn.assistant_message_id,
        project="docs",
        question="what?",
        query="what",
        citations=[],
        project_items=5,
    )
    assert update.project_items == 1
    assert await redis.llen(names.project_memory("docs")) == 1
    assert await redis.get(names.session_summary("44")) is not None


async def test_scripts_a_primary_forgot_are_loaded_again(
    cluster: tuple[RedisCluster, Names],
) -> None:
    """A replica promoted, or a primary restarted, knows none of the scripts: the call is sent
    again after loading them everywhere."""
    redis, names = cluster
    await redis.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.PRIMARIES)
    job_id = new_scoped_id("33")
    log = JobEventLog(redis, names, EventLogSettings(), job_id)
    await log.emit(events.START, {"jobId": job_id})
    await log.flush()
    assert [e.seq for e in await replay_log.read_after(redis, names, job_id, 0)] == [1]
