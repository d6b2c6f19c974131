"""The worker's event log on the real Redis: events emitted back to back all land, in order,
once each; a batch never interleaves with another writer's events; a retried token write does
not repeat its text; a run waits out a Redis that is away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import events, redis_scripts, replay_log
from shared.events import Event, decode_event, encode_event
from shared.job import Job
from shared.messages import MessageStore
from shared.names import Names
from shared.redis_client import RedisPipeline
from shared.settings import ConnectionSettings, EventLogSettings
from tests.conftest import AUTH, REDIS_URL, GatewayFactory, WorkerFactory
from tests.support.redis_server import PrivateRedis
from tests.support.sse import job_events, parse_sse
from worker.event_log import EventLogConflictError, JobEventLog
from worker.job_run import JobRun

pytestmark = pytest.mark.real


@pytest.fixture
async def redis(real_connections: ConnectionSettings) -> AsyncIterator[Redis]:
    client = Redis.from_url(real_connections.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_events_emitted_back_to_back_land_in_order_and_are_published(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    names = real_connections.names
    log = JobEventLog(redis, names, EventLogSettings(), "job-1")
    pubsub = redis.pubsub()
    await pubsub.subscribe(names.job_channel("job-1"))
    try:
        for i in range(300):  # past the queue bound, so emit also waits for the sender
            await log.emit(events.TOKEN, events.token_payload(f"t{i}"))
        await log.flush()
        logged = await replay_log.read_after(redis, names, "job-1", 0)
        published: list[Event] = []
        while len(published) < 300:
            message = await pubsub.get_message(timeout=5)
            assert message is not None, f"only {len(published)} events were published"
            if message["type"] == "message":
                published.append(decode_event(message["data"]))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert [e.seq for e in logged] == list(range(1, 301))
    assert [e.payload["content"] for e in logged] == [f"t{i}" for i in range(300)]
    assert [e.seq for e in published] == list(range(1, 301))
    assert log.published == 300
    assert await redis.ttl(names.job_replay_log("job-1")) > 0


async def test_a_batch_after_another_writers_event_is_refused_whole(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    names = real_connections.names
    log = JobEventLog(redis, names, EventLogSettings(), "job-2")
    await log.emit(events.START, {"jobId": "job-2"})
    await log.flush()
    # Another writer (a gateway ending the job as stalled) takes seq 2.
    stalled = Event("job-2", 2, events.ERROR, events.error_payload("stalled", "job_stalled"))
    appender = replay_log.EventAppender(names, EventLogSettings(), "PUBLISH")
    await redis_scripts.run_staged(
        redis, lambda pipe: appender.stage(pipe, "job-2", 2, [encode_event(stalled)])
    )
    for text in ("a", "b", "c"):
        await log.emit(events.TOKEN, events.token_payload(text))
    with pytest.raises(EventLogConflictError):
        await log.flush()
    with pytest.raises(EventLogConflictError):
        await log.emit(events.TOKEN, events.token_payload("d"))
    logged = await replay_log.read_after(redis, names, "job-2", 0)
    assert [(e.seq, e.type) for e in logged] == [(1, events.START), (2, events.ERROR)]


async def test_a_batch_sent_again_after_its_first_send_landed_is_taken_once(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    """A client that retried a pipeline whose reply it lost (redis-py's own retry does) sends
    the same batch twice: the second finds it logged and is no conflict; a batch that differs,
    or one that another writer's event follows, still is."""
    names = real_connections.names
    appender = replay_log.EventAppender(names, EventLogSettings(), "PUBLISH")
    batch = [
        encode_event(Event("job-r", seq, events.TOKEN, events.token_payload(f"t{seq}")))
        for seq in (1, 2)
    ]

    async def append(first_seq: int, raws: list[bytes]) -> int:
        (reply,) = await redis_scripts.run_staged(
            redis, lambda pipe: appender.stage(pipe, "job-r", first_seq, raws)
        )
        return int(reply)

    pubsub = redis.pubsub()
    await pubsub.subscribe(names.job_channel("job-r"))
    try:
        assert await append(1, batch) == 0
        assert await append(1, batch) == 0
        assert await append(2, batch[1:]) == 0
        other = encode_event(Event("job-r", 2, events.TOKEN, events.token_payload("other")))
        assert await append(1, [batch[0], other]) == 2
        assert await append(1, batch[:1]) == 2
        published = []
        while (message := await pubsub.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                published.append(decode_event(message["data"]).seq)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert published == [1, 2]
    logged = await replay_log.read_after(redis, names, "job-r", 0)
    assert [e.payload["content"] for e in logged] == ["t1", "t2"]


async def test_a_token_written_twice_at_its_offset_is_stored_once(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    names = real_connections.names
    store = MessageStore(redis, names)
    await redis.hset(names.message("m1"), "status", "streaming")
    await redis.set(names.message_content("m1"), "")
    for offset, text in ((0, "héllo"), (6, " world"), (6, " world")):  # the last one retried
        await redis_scripts.run_staged(
            redis, lambda pipe, o=offset, t=text: store.stage_write_at(pipe, "m1", o, t)
        )
    assert (await redis.get(names.message_content("m1"))).decode() == "héllo world"


async def test_a_batch_of_tokens_grows_the_stored_message_by_exactly_their_text(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    """The tokens of one batch go to the stored message as one write, at the first one's byte
    offset; the next batch continues where it ended."""
    names = real_connections.names
    store = MessageStore(redis, names)
    await redis.hset(names.message("m2"), "status", "streaming")
    await redis.set(names.message_content("m2"), "")
    job = Job(
        job_id="job-5", session_id="s", message_id="m2", user_id="u", pipeline="echo", text=""
    )
    run = JobRun(
        job=job, log=JobEventLog(redis, names, EventLogSettings(), "job-5"), messages=store
    )
    for text in ("héllo", " wörld", " ✓"):  # emitted back to back: one batch
        await run.token(text)
    await run.progress("memory", "between the batches")
    await run.log.flush()
    assert (await redis.get(names.message_content("m2"))).decode() == "héllo wörld ✓"
    await run.token(" again")
    await run.log.flush()
    assert (await redis.get(names.message_content("m2"))).decode() == "héllo wörld ✓ again"
    logged = await replay_log.read_after(redis, names, "job-5", 0)
    assert [e.type for e in logged] == [events.TOKEN] * 3 + [events.PROGRESS, events.TOKEN]


@pytest.fixture
async def private_client(private_redis: PrivateRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(private_redis.url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


async def started_log(redis: Redis, names: Names, job_id: str) -> JobEventLog:
    """A job's event log whose ``start`` is in Redis."""
    log = JobEventLog(redis, names, EventLogSettings(), job_id)
    await log.emit(events.START, {"jobId": job_id})
    await log.flush()
    return log


async def test_events_are_published_again_after_redis_lost_its_scripts(
    private_client: Redis,
) -> None:
    """A Redis that lost its scripts (a restart) takes the next batch all the same: the batch
    is sent again after loading them. A private Redis, so that flushing its scripts touches no
    other client."""
    names = Names("flushed")
    log = await started_log(private_client, names, "job-3")
    await private_client.script_flush()
    await log.emit(events.TOKEN, events.token_payload("after the flush"))
    await log.flush()
    logged = await replay_log.read_after(private_client, names, "job-3", 0)
    assert [e.seq for e in logged] == [1, 2]
    assert logged[1].payload["content"] == "after the flush"


async def test_a_redelivered_run_waits_out_redis_to_read_where_the_log_stands(
    private_redis: PrivateRedis, private_client: Redis
) -> None:
    """A job handed back while Redis is away (its run gave up) is taken again at once: the new
    run reads the log's last event with the same patience as events are written."""
    names = Names("resumed")
    await started_log(private_client, names, "job-4")
    await private_client.save()  # what the restarted server loads
    private_redis.kill()
    rerun = JobEventLog(private_client, names, EventLogSettings(publish_retry_s=30.0), "job-4")
    resuming = asyncio.create_task(rerun.resume())
    await asyncio.sleep(0.3)
    assert not resuming.done()
    await private_redis.start()
    last = await resuming
    assert last is not None and last.seq == 1
    assert rerun.last_seq == 1


async def test_a_read_along_goes_out_with_the_next_events(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    names = real_connections.names
    await redis.set(names.job_cancel_flag("job-6"), 1)
    log = JobEventLog(redis, names, EventLogSettings(), "job-6")
    flag = log.read_along(lambda pipe: pipe.exists(names.job_cancel_flag("job-6")))
    await asyncio.sleep(0.05)
    assert not flag.done()  # no round trip of its own
    await log.emit(events.START, {"jobId": "job-6"})
    assert await flag == 1
    await log.flush()
    logged = await replay_log.read_after(redis, names, "job-6", 0)
    assert [(e.seq, e.type) for e in logged] == [(1, events.START)]


async def test_a_read_along_a_refused_batch_gets_the_refusal(
    redis: Redis, real_connections: ConnectionSettings
) -> None:
    names = real_connections.names
    appender = replay_log.EventAppender(names, EventLogSettings(), "PUBLISH")
    taken = Event("job-7", 1, events.ERROR, events.error_payload("stalled", "job_stalled"))
    await redis_scripts.run_staged(
        redis, lambda pipe: appender.stage(pipe, "job-7", 1, [encode_event(taken)])
    )
    log = JobEventLog(redis, names, EventLogSettings(), "job-7")
    flag = log.read_along(lambda pipe: pipe.exists(names.job_cancel_flag("job-7")))
    await log.emit(events.START, {"jobId": "job-7"})
    with pytest.raises(EventLogConflictError):
        await flag
    with pytest.raises(EventLogConflictError):
        await log.flush()


async def test_a_quick_echo_job_goes_out_in_two_round_trips(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
) -> None:
    # Its start with the cancel flag's read, then everything else (the end with the last
    # tokens): each round trip is a send the worker and Redis pay for, on the way to the first
    # token too. Each round trip carries one call of the append script, as Redis's MONITOR
    # shows it.
    gateway = await start_gateway(real_connections)
    await start_worker(real_connections)
    seen: list[str] = []
    # Redis runs commands in order and MONITOR lists them so: once this marker, sent after the
    # job's end was relayed, is listed, every append of the job is too.
    marker = f"ECHO round-trips-{uuid.uuid4().hex}"
    async with Redis.from_url(REDIS_URL) as redis, redis.monitor() as monitor:

        async def record() -> None:
            while not seen or seen[-1] != marker:
                try:
                    seen.append((await monitor.next_command())["command"])
                except (AttributeError, ValueError):
                    # A command of another client's whose bytes redis-py's MONITOR parser
                    # cannot split (the shared Redis serves every test): not one of ours.
                    continue

        recording = asyncio.create_task(record())
        try:
            response = await gateway.post(
                "/api/v1/chat/stream",
                json={"text": "one two three", "pipeline": "echo"},
                headers=AUTH,
            )
            body = await response.read()
            await redis.echo(marker.removeprefix("ECHO "))
            async with asyncio.timeout(30):
                await recording
        finally:
            recording.cancel()
            await asyncio.gather(recording, return_exceptions=True)
    assert [e["type"] for e in job_events(parse_sse(body))][-1] == "end"
    replay_log_key = real_connections.names.job_replay_log(response.headers["X-Job-Id"])
    appends = [
        command
        for command in seen
        if command.startswith(f"EVALSHA {replay_log.APPEND_EVENTS.sha} ")
        and f" {replay_log_key} " in command
    ]
    assert len(appends) == 2


async def test_an_append_lands_whether_or_not_redis_has_its_script_cached(
    tmp_path: Path,
) -> None:
    """A private Redis, so that flushing its script cache touches no other client. Appends go
    by the script's hash, never with its text; one that Redis refuses for want of the script is
    sent again after loading it, with what was staged before it, and lands once."""
    server = PrivateRedis(tmp_path)
    await server.start()
    redis = Redis.from_url(server.url, protocol=2)
    names = Names("cache")
    appender = replay_log.EventAppender(names, EventLogSettings(), "PUBLISH")
    channel = names.job_channel("job")

    async def append(seq: int, content: str = "x") -> list[Any]:
        event = Event(job_id="job", seq=seq, type="token", payload={"content": content})
        raw = encode_event(event)

        def stage(pipe: RedisPipeline) -> None:
            pipe.pubsub_numsub(channel)
            appender.stage(pipe, "job", seq, [raw])

        return await redis_scripts.run_staged(redis, stage)

    try:
        assert not (await redis.script_exists(replay_log.APPEND_EVENTS.sha))[0]
        assert await append(1) == [[(channel.encode(), 0)], 0]
        assert (await redis.script_exists(replay_log.APPEND_EVENTS.sha))[0]
        assert await append(2) == [[(channel.encode(), 0)], 0]
        await redis.script_flush()
        assert await append(3) == [[(channel.encode(), 0)], 0]
        # Another event at a logged seq is still refused by the script.
        assert await append(3, "y") == [[(channel.encode(), 0)], 3]
        logged = await replay_log.read_after(redis, names, "job", 0)
        assert [e.seq for e in logged] == [1, 2, 3]
        calls = await redis.info("commandstats")
        assert "cmdstat_eval" not in calls
        # Four appends and the two refused for want of the script: on the Redis just started,
        # and after the flush.
        assert calls["cmdstat_evalsha"]["calls"] == 6
        assert calls["cmdstat_evalsha"]["failed_calls"] == 2
    finally:
        await redis.aclose()
        server.kill()
