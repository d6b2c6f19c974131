"""Scripts called through shared.redis_scripts survive a Redis that lost them (restarted empty,
or SCRIPT FLUSH): run on their own or staged into a pipeline, transaction or not, each call
lands once, and a pipeline's commands end up applied in their order. On a private Redis, so
that flushing its scripts touches no other client, and on the embedded one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import pytest
from redis.asyncio import Redis

from shared import redis_scripts
from shared.redis_client import RedisPipeline
from tests.support.redis_server import PrivateRedis

COUNT = redis_scripts.LuaScript("return redis.call('INCR', KEYS[1])")
SET_TO = redis_scripts.LuaScript("return redis.call('SET', KEYS[1], ARGV[1])")


@pytest.fixture(params=[pytest.param("private", marks=pytest.mark.real), "embedded"])
async def redis(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Redis]:
    if request.param == "embedded":
        client: Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        yield client
        await client.aclose()
        return
    server = PrivateRedis(tmp_path)
    await server.start()
    client = Redis.from_url(server.url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()
        server.kill()


async def test_a_script_run_on_its_own_is_loaded_when_redis_lacks_it(redis: Redis) -> None:
    assert await COUNT.run(redis, ["count"]) == 1
    assert (await redis.script_exists(COUNT.sha))[0]
    await redis.script_flush()
    assert await COUNT.run(redis, ["count"]) == 2
    assert await COUNT.run(redis, ["count"]) == 3


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "transaction"])
async def test_a_pipeline_whose_scripts_redis_lost_lands_once_in_order(
    redis: Redis, transaction: bool
) -> None:

    def before(pipe: RedisPipeline) -> None:
        COUNT.stage(pipe, ["count"])
        SET_TO.stage(pipe, ["key"], ["before"])

    assert await redis_scripts.run_staged(redis, before, transaction=transaction) == [1, b"OK"]
    await redis.script_flush()

    def after(pipe: RedisPipeline) -> None:
        SET_TO.stage(pipe, ["key"], ["by the script"])
        pipe.set("key", "after the script")
        pipe.get("key")

    replies = await redis_scripts.run_staged(redis, after, transaction=transaction)
    assert replies == [b"OK", True, b"after the script"]
    assert await redis.get("key") == b"after the script"
    assert await redis.script_exists(COUNT.sha, SET_TO.sha) == [True, True]


@pytest.mark.real
async def test_a_redis_just_started_gets_every_script_once(tmp_path: Path) -> None:
    """The first call it refuses loads every script of the process, so that no later call of
    any of them is refused."""
    server = PrivateRedis(tmp_path)
    await server.start()
    redis = Redis.from_url(server.url, protocol=2)
    try:

        def stage(pipe: RedisPipeline) -> None:
            SET_TO.stage(pipe, ["key"], ["v"])
            pipe.get("key")

        assert await redis_scripts.run_staged(redis, stage) == [b"OK", b"v"]
        assert await COUNT.run(redis, ["count"]) == 1
        calls = await redis.info("commandstats")
    finally:
        await redis.aclose()
        server.kill()
    assert calls["cmdstat_evalsha"]["calls"] == 3
    assert calls["cmdstat_evalsha"]["failed_calls"] == 1


async def test_a_pipeline_raises_its_first_error(redis: Redis) -> None:
    await redis.set("text", "not a number")

    def stage(pipe: RedisPipeline) -> None:
        COUNT.stage(pipe, ["text"])
        pipe.set("after", "the error")

    with pytest.raises(Exception, match="not an integer"):
        await redis_scripts.run_staged(redis, stage)
    assert await redis.get("after") == b"the error"


async def test_a_script_s_command_is_the_evalsha_redis_knows_it_by(redis: Redis) -> None:
    """What a client sending commands by other means (the bench's publisher) is given."""
    assert await redis.script_load(COUNT.text) == COUNT.sha
    assert await redis.execute_command(*COUNT.command(["count"])) == 1
