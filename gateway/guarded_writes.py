"""A turn's checks and its writes: the request's rate-limit hit, the job's lease (a stream's or
a waiting completion's) and the session's owner must all allow them, or nothing is stored.

Two scripts, each on keys of one slot, so that a Redis Cluster runs them as it runs them on one
Redis (docs/redis-cluster.md): the user's, which takes the hit and the lease and files the
session in the user's index, and then the session's, which checks the owner and writes the
turn. Checks that had a round trip of their own before the writes cost about half of the
gateway's share of the time to first token; these two cost one more than a single script
would, which one Redis could run and a cluster cannot."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway.limits import ACQUIRE_LEASE_FUNCTION, LeaseClaim, RateHit
from shared import redis_scripts
from shared.redis_client import RedisClient, RedisPipeline

# KEYS: the user's sessions index, then the rate window if ARGV[1] is not '', then the stream
# leases if ARGV[3] is not ''. ARGV: the rate limit and the window's expiry; the lease's
# arguments (now, expiry, max streams, stream id); the session's id, its score, and whether
# it is 'new' (filed) or not (its entry, if the user has one, moves up; another user's id is
# never filed). Returns {verdict, count}: the hit's count, or false without one.
_ADMIT = redis_scripts.LuaScript(
    ACQUIRE_LEASE_FUNCTION
    + """
local next_key = 2
local count = false
if ARGV[1] ~= '' then
  count = redis.call('INCR', KEYS[next_key])
  redis.call('EXPIRE', KEYS[next_key], ARGV[2])
  next_key = next_key + 1
  if count > tonumber(ARGV[1]) then
    return {'rate_limited', count}
  end
end
if ARGV[3] ~= '' and acquire_lease(KEYS[next_key], ARGV[3], ARGV[4], ARGV[5], ARGV[6]) == 0 then
  return {'no_lease', count}
end
redis.call('ZADD', KEYS[1], ARGV[9] == 'new' and 'NX' or 'XX', ARGV[8], ARGV[7])
return {'ok', count}
"""
)

# KEYS: the session's hash, then every key the writes name. ARGV: the session's owner ('' for
# a new session: nothing to check); then the writes, each as its argument count and its
# arguments. Returns {'no_session'} or {'ok', the writes' replies...}.
_WRITE_IF_OWNED = redis_scripts.LuaScript(
    """
local unpack = unpack or table.unpack
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'userId') ~= ARGV[1] then
  return {'no_session'}
end
local replies = {'ok'}
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  replies[#replies + 1] = redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return replies
"""
)

_NO_LEASE_ARGS: list[float | int | str] = ["", "", "", ""]


class Verdict(enum.Enum):
    WRITTEN = "ok"
    RATE_LIMITED = "rate_limited"
    NO_SESSION = "no_session"
    NO_LEASE = "no_lease"


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """The session a turn writes to: its hash's key, its id and score in the user's sessions
    index, and whether the turn creates it (else its owner must be the caller)."""

    key: str
    session_id: str
    index_key: str
    score_ms: int
    new: bool


@dataclass(frozen=True, slots=True)
class Guard:
    """What must allow a turn's writes: the caller, the session, and each optional check None
    where it does not apply."""

    user_id: str
    session: SessionEntry
    rate: RateHit | None = None
    lease: LeaseClaim | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    # The rate window's count with this hit (None without one).
    count: int | None
    # The writes' replies as Redis gave them, in order (empty unless written).
    replies: list[Any]


async def write_if_allowed(
    redis: RedisClient, guard: Guard, stage: Callable[[RedisPipeline], None]
) -> Outcome:
    """Run the writes that ``stage`` stages into a pipeline if ``guard`` allows them: the rate
    hit, the session's owner and the lease, judged in that order, as one script judged them
    before a cluster split them (the lease is taken first; a lease taken for a turn the owner
    check refuses is given back, and a turn refused a lease is told first when its session is
    not the caller's: that is not worth retrying). The pipeline only records the commands (it is
    never sent), so the stores' staging methods serve here as they do in a transaction;
    their replies come back raw, without redis-py's per-command conversions (an HGETALL's is
    a flat list). Every command's first argument is its key. Lua's ``unpack`` bounds one
    command to about 8,000 words, far above a turn's."""
    verdict, count = await _admit(redis, guard)
    if verdict is Verdict.NO_LEASE and not guard.session.new and not await _owned(redis, guard):
        verdict = Verdict.NO_SESSION
    if verdict is not Verdict.WRITTEN:
        return Outcome(verdict, count, [])
    # Never sent: it only records the commands.
    recorder = Pipeline(None, {}, False, None)  # type: ignore[arg-type]
    stage(recorder)
    keys: list[Any] = [guard.session.key]
    writes: list[Any] = []
    for command, _options in recorder.command_stack:
        keys.append(command[1])
        writes.append(len(command))
        writes.extend(command)
    owner = "" if guard.session.new else guard.user_id
    written, *replies = await _WRITE_IF_OWNED.run(
        redis, list(dict.fromkeys(keys)), [owner, *writes]
    )
    if written != b"ok":
        if guard.lease is not None:
            # Expires by itself when Redis does not take it back now.
            with contextlib.suppress(RedisError):
                await redis.zrem(guard.lease.key, guard.lease.args[3])
        return Outcome(Verdict.NO_SESSION, count, [])
    return Outcome(Verdict.WRITTEN, count, replies)


async def _owned(redis: RedisClient, guard: Guard) -> bool:
    return bool(await redis.hget(guard.session.key, "userId") == guard.user_id.encode())


async def _admit(redis: RedisClient, guard: Guard) -> tuple[Verdict, int | None]:
    rate, lease, session = guard.rate, guard.lease, guard.session
    keys = [session.index_key]
    if rate is not None:
        keys.append(rate.key)
    if lease is not None:
        keys.append(lease.key)
    args = [
        rate.per_minute if rate else "",
        rate.key_ttl_s if rate else "",
        *(lease.args if lease else _NO_LEASE_ARGS),
        session.session_id,
        session.score_ms,
        "new" if session.new else "",
    ]
    verdict, count = await _ADMIT.run(redis, keys, args)
    return Verdict(verdict.decode()), count
