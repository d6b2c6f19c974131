"""Lua scripts, loaded and called one way: by their SHA1 (EVALSHA), loaded when Redis does not
know them.

A script is declared where the data it touches is (``LuaScript(text)`` as a module constant)
and then either run on its own (:meth:`LuaScript.run`) or staged into a pipeline with other
commands (:meth:`LuaScript.stage`), that pipeline built and sent by :func:`run_staged`.

A script goes by its hash rather than with its text (EVAL) so that Redis need not read and hash
it at every call. redis-py's own script objects (``register_script``) do that too, but a
pipeline holding one first asks Redis whether it knows the script (SCRIPT EXISTS), a round trip
of its own before every pipeline, and a cluster's pipelines refuse them. A Redis that does not
know a script (just started, restarted, a replica just promoted, SCRIPT FLUSH) refuses its
hash: every script of the process is then loaded, on every primary of a cluster, and the call,
or the whole pipeline that staged it, is sent again. That happens once per server, not per
call.

On a cluster every key a script reads or writes, and every channel it publishes on, is in its
``KEYS`` and in one hash slot (shared/names.py), so that the cluster sends it to the node that
holds them all, and a slot that moves meanwhile is refused (TRYAGAIN, ASK) rather than half
written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

from shared.redis_client import RedisClient, RedisPipeline

# Every script of the process, by its SHA1: what is loaded when Redis knows none of them.
_BY_SHA: dict[str, LuaScript] = {}


class LuaScript:
    """One Lua script: its text, and the SHA1 that Redis knows it by once loaded."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        _BY_SHA[self.sha] = self

    async def run(
        self, redis: RedisClient, keys: Sequence[KeyT], args: Sequence[EncodableT] = ()
    ) -> Any:
        """Run the script on its own and return its reply."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await load_all(redis)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    def stage(
        self, pipe: RedisPipeline, keys: Sequence[KeyT], args: Sequence[EncodableT] = ()
    ) -> None:
        """Stage the script into ``pipe``, which :func:`run_staged` sends."""
        # As a plain command: a cluster's pipeline refuses its evalsha method.
        pipe.execute_command(*self.command(keys, args))

    def command(self, keys: Sequence[KeyT], args: Sequence[EncodableT] = ()) -> tuple[Any, ...]:
        """The EVALSHA that calls the script, word by word, for a client that sends commands by
        other means (and loads the script first: SCRIPT LOAD :attr:`text`)."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


async def run_staged(
    redis: RedisClient, stage: Callable[[RedisPipeline], None], *, transaction: bool = False
) -> list[Any]:
    """Send the commands ``stage`` stages into a pipeline (a transaction if asked), scripts
    among them, and return their replies, raising the first error among them as
    ``pipe.execute()`` does.

    If Redis did not know a script the pipeline calls, the scripts are loaded and the whole
    pipeline is staged and sent again, so that its commands end up applied in their order
    (sending again only the refused calls would apply them after the commands staged behind
    them). A pipeline that stages a script must therefore be safe to send twice, as any
    pipeline is that redis-py sends again after a connection error."""
    replies = await _send(redis, stage, transaction=transaction)
    if any(isinstance(reply, NoScriptError) for reply in replies):
        await load_all(redis)
        replies = await _send(redis, stage, transaction=transaction)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def load_all(redis: RedisClient) -> None:
    """Load every script of the process (on a cluster, on every primary)."""
    for script in list(_BY_SHA.values()):
        await redis.script_load(script.text)


async def _send(
    redis: RedisClient, stage: Callable[[RedisPipeline], None], *, transaction: bool
) -> list[Any]:
    async with redis.pipeline(transaction=transaction) as pipe:
        stage(pipe)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies
