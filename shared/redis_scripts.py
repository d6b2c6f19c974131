"""Lua scripts, loaded and called one way: by their SHA1 (EVALSHA), loaded when Redis does not
know them.

A script is declared where the data it touches is (``LuaScript(text)`` as a module constant)
and then either run on its own (:meth:`LuaScript.run`) or staged into a pipeline with other
commands (:meth:`LuaScript.stage`), that pipeline then sent by :func:`execute`.

A script goes by its hash rather than with its text (EVAL) so that Redis need not read and hash
it at every call. redis-py's own script objects (``register_script``) do that too, but a
pipeline holding one first asks Redis whether it knows the script (SCRIPT EXISTS), a round trip
of its own before every pipeline. Here the first pipeline through a connection pool that stages
a script loads it in the same round trip, ahead of its first call, so that on a Redis just
started nothing staged after the script lands without it. A Redis that lost its scripts since
(a restart, SCRIPT FLUSH) refuses the hash: the call, or the whole pipeline that staged it, is
sent again after loading it.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

# Every script of the process by its SHA1: what a pipeline loads again after Redis lost them.
_BY_SHA: dict[object, LuaScript] = {}

# Per connection pool, the SHA1s of the scripts its Redis has loaded (SCRIPT LOAD): Redis keeps
# them until a restart or SCRIPT FLUSH.
_LOADED_BEHIND: weakref.WeakKeyDictionary[ConnectionPool, set[str]] = weakref.WeakKeyDictionary()

_SCRIPT_LOAD = "SCRIPT LOAD"


class LuaScript:
    """One Lua script: its text, and the SHA1 that Redis knows it by once loaded."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        _BY_SHA[self.sha] = self

    async def run(self, redis: Redis, keys: Sequence[KeyT], args: Sequence[EncodableT] = ()) -> Any:
        """Run the script on its own and return its reply."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.text)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    def stage(self, pipe: Pipeline, keys: Sequence[KeyT], args: Sequence[EncodableT] = ()) -> None:
        """Stage the script into ``pipe``, which must then be sent by :func:`execute`."""
        if self.sha not in _loaded_behind(pipe.connection_pool):
            pipe.script_load(self.text)
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def command(self, keys: Sequence[KeyT], args: Sequence[EncodableT] = ()) -> tuple[Any, ...]:
        """The EVALSHA that calls the script, word by word, for a client that sends commands by
        other means (and loads the script first: SCRIPT LOAD :attr:`text`)."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


async def execute(pipe: Pipeline) -> list[Any]:
    """Send ``pipe`` (transaction or not), whose commands may include staged scripts, and return
    the replies of the commands staged into it, raising the first error among them as
    ``pipe.execute()`` does.

    If Redis lost a script the pipeline calls, the lost scripts are loaded and the whole
    pipeline is sent again, in one more round trip, so that its commands end up applied in
    their order (sending again only the refused calls would apply them after the commands
    staged behind them). A pipeline that stages a script must therefore be safe to send twice,
    as any pipeline is that redis-py sends again after a connection error."""
    staged = pipe.command_stack[:]
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    lost = {staged[i][0][1] for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)}
    if lost:
        for sha in lost:
            pipe.script_load(_BY_SHA[sha].text)
        for command, options in staged:
            pipe.execute_command(*command, **options)
        staged = pipe.command_stack[:]
        replies = await pipe.execute(raise_on_error=False)
    loaded = _loaded_behind(pipe.connection_pool)
    kept: list[Any] = []
    for (command, _), reply in zip(staged, replies, strict=True):
        if isinstance(reply, Exception):
            raise reply
        if command[0] == _SCRIPT_LOAD:
            loaded.add(reply)
        else:
            kept.append(reply)
    return kept


def _loaded_behind(pool: ConnectionPool) -> set[str]:
    loaded = _LOADED_BEHIND.get(pool)
    if loaded is None:
        loaded = _LOADED_BEHIND[pool] = set()
    return loaded
